"""``diffv2m train autoencoder`` for the score family: the piano-roll autoencoder.

Selected by the config (``latent_family = "score"``, e.g. ``--config score``).  Data: every
train clip's roll (``clips/ID.roll.npz``, :mod:`diffv2m.data.scores`), cropped to the model's
pitch range; each step draws ``--batch-size`` random windows of ``--segment-seconds`` (a
whole number of latent frames) with the step's generator.  Loss: :func:`score_loss`, with
the posterior sampled at ``--posterior-noise`` times its std (as the waveform VAE).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from . import distributed
from .data import save_json, split_clips
from .loop import StepLoss, train


def clip_rolls(clips: list[dict], config) -> list[np.ndarray]:
    """Each clip's roll, cropped to the model's pitches: ``[4, 3, P, F]`` float32."""
    from ..data.scores import clip_roll_file, load_score
    from ..models.score_autoencoder import crop_pitches
    out = []
    for c in clips:
        path = clip_roll_file(c)
        if not path.is_file():
            raise UserError(f"{path}: missing clip score; run 'diffv2m corpus scores "
                            f"{path.parent.parent}'")
        out.append(np.ascontiguousarray(crop_pitches(load_score(path)[1], config.autoencoder)))
    return out


def roll_batch(bank: list[np.ndarray], batch: int, frames: int, gen: torch.Generator,
               transpose: int = 0) -> torch.Tensor:
    """``[batch, 4, 3, P, frames]`` random windows drawn with ``gen``; pitched tracks shifted
    by a random ``-transpose..transpose`` semitones (drums never)."""
    idx = torch.randint(len(bank), (batch,), generator=gen).tolist()
    shape = bank[0].shape[:-1]
    out = np.zeros((batch,) + shape + (frames,), np.float32)
    for b, i in enumerate(idx):
        r = bank[i]
        start = int(torch.randint(max(1, r.shape[-1] - frames + 1), (1,), generator=gen))
        seg = r[..., start:start + frames]
        shift = int(torch.randint(-transpose, transpose + 1, (1,), generator=gen)) if transpose else 0
        out[b, ..., : seg.shape[-1]] = seg
        if shift:
            out[b, :3] = np.roll(out[b, :3], shift, axis=-2)
            if shift > 0:
                out[b, :3, :, :shift] = 0.0
            else:
                out[b, :3, :, shift:] = 0.0
    return torch.from_numpy(out)


def train_score_autoencoder(args: argparse.Namespace, config) -> Path:
    from ..data.manifest import read_manifest
    from ..models.score_autoencoder import ScoreAutoencoder, score_loss
    from .autoencoder import save_autoencoder

    torch.manual_seed(args.seed)
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UserError(f"--device {args.device}: choose auto, cpu or cuda")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    run = Path(args.run_dir)
    clips = split_clips(read_manifest(Path(args.manifest), strict=False), "train")
    bank = clip_rolls(clips, config)
    hop = config.autoencoder.hop
    frames = max(hop, int(round(args.segment_seconds * config.autoencoder.frame_rate / hop)) * hop)
    ae = ScoreAutoencoder(config.autoencoder).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)

    def step_loss(net, step, gen):                  # one process: net is ae
        x = roll_batch(bank, args.batch_size, frames, gen, args.transpose).to(device)
        mean, logvar = ae.encode(x)
        noise = torch.randn(mean.shape, generator=gen).to(device)
        z = mean + args.posterior_noise * torch.exp(0.5 * logvar) * noise
        terms = score_loss(ae.decode_logits(z), x, mean, logvar, kl_weight=args.kl_weight)
        return StepLoss(terms["total"], {k: v.item() for k, v in terms.items() if k != "total"})

    ema = train(ae, opt, step_loss, run_dir=run, steps=args.steps, lr=args.lr,
                ema_decay=args.ema, seed=args.seed, save_every=args.save_every,
                info=distributed.DistInfo(device=device),        # one process
                run_info={"config": config.to_dict(), "args": vars(args)},
                desc="score autoencoder")
    out = Path(args.out) if args.out else run / "autoencoder.safetensors"
    save_autoencoder(out, ema.shadow, config)
    summary = {"steps": args.steps, "train_clips": len(bank), "segment_frames": frames,
               "checkpoint": str(out)}
    if args.val_samples:
        summary["val"] = reconstruction_figures(ema.shadow.cpu(), Path(args.manifest), config,
                                                args.val_samples)
    save_json(run / "summary.json", summary)
    return out


@torch.no_grad()
def reconstruction_figures(ae, manifest: Path, config, n: int) -> dict:
    """Note-F1 (onset within one frame, same track and pitch) of ``n`` val clips' round trip."""
    from ..data.manifest import read_manifest
    from ..evaluate.note_f1 import note_f1
    from ..score.roll import roll_to_notes
    clips = split_clips(read_manifest(manifest, strict=False), "val")[:n]
    rolls = clip_rolls(clips, config)
    cfg = config.autoencoder
    f1 = []
    for r in rolls:
        prob = ae(torch.from_numpy(r[None]))[0, ..., : r.shape[-1]].numpy()
        ref = roll_to_notes(r, pitch_low=cfg.pitch_low, rate=cfg.frame_rate)
        got = roll_to_notes(prob, pitch_low=cfg.pitch_low, rate=cfg.frame_rate)
        f1.append(note_f1(got, ref, onset_tol=1.5 / cfg.frame_rate)["f1"])
    return {"clips": len(rolls), "note_f1": float(np.mean(f1)) if f1 else float("nan")}


@torch.no_grad()
def encode_score_latents(ae, clips: list[dict], frames: int, device) -> np.ndarray:
    """Posterior means of every clip's roll over its first ``frames`` latent frames:
    ``[N, C, frames]``."""
    cfg = ae.cfg
    out = []
    for r in clip_rolls(clips, _Cfg(cfg)):
        buf = np.zeros(r.shape[:-1] + (frames * cfg.hop,), np.float32)
        n = min(buf.shape[-1], r.shape[-1])
        buf[..., :n] = r[..., :n]
        z = ae.encode_latent(torch.from_numpy(buf[None]).to(device))[0, :, :frames].cpu().numpy()
        out.append(z)
    return np.stack(out).astype(np.float32)


class _Cfg:
    """The bit of a ModelConfig :func:`clip_rolls` reads."""

    def __init__(self, ae_cfg):
        self.autoencoder = ae_cfg
