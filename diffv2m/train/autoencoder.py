"""``diffv2m train autoencoder``: the waveform VAE on random crops of the corpus music (the
score family's piano-roll autoencoder trains in :mod:`.score_autoencoder`, chosen by config).

Loss (CPU-friendly; adversarial terms optional behind ``--adversarial``):

    L = L_mrstft(x, x_hat) + w_mel L_mel(x, x_hat) + beta KL(q(z|x) || N(0, I))
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..config import add_config_option, resolve_config
from . import distributed
from .data import (audio_batch, load_audio_bank, load_audio_pack, save_audio_pack,
                   save_json, split_clips)
from .loop import StepLoss, train


class VAEPass(torch.nn.Module):
    """One training pass of the VAE: x -> (x_hat, mean, logvar), z = mean + s * std * noise.

    ``posterior_noise`` (s) below 1 keeps a small model from ignoring its latent early in
    training: with s = 1 the untrained encoder's means drown in unit noise, the decoder learns
    to ignore z and the posterior collapses (seen here on the CPU recipe).
    """

    def __init__(self, ae: torch.nn.Module, posterior_noise: float = 1.0):
        super().__init__()
        self.ae = ae
        self.posterior_noise = posterior_noise

    def forward(self, x: torch.Tensor, noise: torch.Tensor):
        mean, logvar = self.ae.encode(x)
        z = mean + self.posterior_noise * torch.exp(0.5 * logvar) * noise[..., : mean.shape[-1]]
        return self.ae.decode(z), mean, logvar


def save_autoencoder(path: Path, ae: torch.nn.Module, config) -> None:
    """Autoencoder-only checkpoint in the model layout (``autoencoder.*`` keys + config)."""
    from safetensors.torch import save_file
    from ..atomic import atomic_path
    tensors = {f"autoencoder.{k}": v.detach().contiguous().cpu()
               for k, v in ae.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"config": config.to_json(), "kind": "autoencoder"})


def train_autoencoder(args: argparse.Namespace) -> Path:
    from ..data.manifest import read_manifest
    from ..models.audio_losses import AutoencoderLoss
    from ..models.autoencoder import Autoencoder

    config = resolve_config(args.config)
    if config.latent_family == "score":           # the piano-roll autoencoder
        from .score_autoencoder import train_score_autoencoder
        return train_score_autoencoder(args, config)
    info = distributed.setup(args.device)
    torch.manual_seed(args.seed)
    run = Path(args.run_dir)
    pack = Path(args.pack) if args.pack else None
    if pack is not None and pack.exists():        # no manifest or media needed
        bank = load_audio_pack(pack, config.sample_rate)
    else:
        clips = split_clips(read_manifest(Path(args.manifest), strict=False), "train")
        bank = load_audio_bank(clips, config.sample_rate)
        if pack is not None and info.main:
            save_audio_pack(pack, bank, config.sample_rate, [c["id"] for c in clips])
    hop = config.autoencoder.hop
    length = max(hop, int(round(args.segment_seconds * config.sample_rate / hop)) * hop)

    ae = Autoencoder(config.autoencoder).to(info.device)
    criterion = AutoencoderLoss(config.sample_rate, config.autoencoder.audio_channels,
                                kl_weight=args.kl_weight, mel_weight=args.mel_weight,
                                adversarial=args.adversarial).to(info.device)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.0)
    disc = criterion.discriminator
    opt_d = (torch.optim.AdamW(disc.parameters(), lr=args.lr, betas=(0.8, 0.99))
             if disc is not None else None)
    part = distributed.share(args.batch_size, info)

    def step_loss(net, step, gen):
        x = audio_batch(bank, args.batch_size, length, gen)
        noise = torch.randn(args.batch_size, config.autoencoder.latent_dim, length // hop,
                            generator=gen)
        x, noise = x[part].to(info.device), noise[part].to(info.device)
        recon, mean, logvar = net(x, noise)
        terms = criterion(recon, x, mean, logvar)
        parts = {k: v.item() for k, v in terms.items() if k != "total"}

        def discriminator_step():
            d_loss = criterion.discriminator_loss(recon, x)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            return {"disc": d_loss.item()}
        adversarial = opt_d is not None and step >= args.adversarial_start
        return StepLoss(terms["total"], parts, after=discriminator_step if adversarial else None)

    ema = train(ae, opt, step_loss, run_dir=run, steps=args.steps, lr=args.lr,
                ema_decay=args.ema, seed=args.seed, save_every=args.save_every, info=info,
                run_info={"config": config.to_dict(), "args": vars(args)},
                forward=VAEPass(ae, args.posterior_noise), desc="autoencoder")
    out = Path(args.out) if args.out else run / "autoencoder.safetensors"
    if info.main:
        save_autoencoder(out, ema.shadow, config)
        save_json(run / "summary.json", {"steps": args.steps, "train_clips": len(bank),
                                         "segment_samples": length, "checkpoint": str(out)})
        if args.val_samples:
            write_reconstructions(ema.shadow, Path(args.manifest), run, config, args.val_samples)
    distributed.barrier(info)
    distributed.teardown(info)
    return out


@torch.no_grad()
def write_reconstructions(ae: torch.nn.Module, manifest: Path, run: Path, config, n: int) -> dict:
    """Reconstruct ``n`` validation clips; write WAVs and the reconstruction figures."""
    from .. import media
    from ..data.manifest import read_manifest
    from ..evaluate.recon_metrics import mel_distance, mrstft_distance, si_sdr
    clips = split_clips(read_manifest(manifest, strict=False), "val")[:n]
    rows = []
    for c in clips:
        a = media.read_audio(c["audio"], config.sample_rate, mono=True)
        z = ae.encode_latent(torch.from_numpy(a[None]))
        y = ae.decode(z)[0, :, : a.shape[1]].numpy()
        media.write_audio(run / "val" / f"{c['id']}.recon.wav", y, config.sample_rate,
                          metadata={"source": c["id"]})
        rows.append({"id": c["id"], "mrstft": mrstft_distance(a[0], y[0]),
                     "mel": mel_distance(a[0], y[0], config.sample_rate), "si_sdr": si_sdr(a[0], y[0])})
    summary = {k: float(np.mean([r[k] for r in rows])) for k in ("mrstft", "mel", "si_sdr")}
    save_json(run / "val" / "recon.json", {"clips": rows, "mean": summary})
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="corpus manifest.jsonl")
    p.add_argument("--run-dir", required=True, help="folder for checkpoints and logs (resumes)")
    p.add_argument("--out", help="final EMA weights (default RUN_DIR/autoencoder.safetensors)")
    add_config_option(p, "small", "model config (small | score | paper, or a JSON file); its "
                                  "latent family picks the autoencoder: waveform VAE or "
                                  "piano-roll autoencoder")
    p.add_argument("--pack", default=None,
                   help="audio pack: the train clips' music in one file, made on first use; "
                        "when it exists the manifest's media are not read")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--mel-weight", type=float, default=1.0)
    p.add_argument("--posterior-noise", type=float, default=1.0,
                   help="scale of the sampling noise in training (0: a plain autoencoder)")
    p.add_argument("--adversarial", action="store_true", help="add the STFT discriminator loss")
    p.add_argument("--adversarial-start", type=int, default=0,
                   help="step from which the discriminator trains")
    p.add_argument("--transpose", type=int, default=0,
                   help="score family: random transposition of pitched tracks, +-semitones")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
