"""``diffv2m train prior``: the rhythm predictor, semantic encoder and DiT on cached latents.

One step (the paper's joint objective, v-parameterised diffusion):

    S     = SemanticEncoder(frames)                 semantic tokens, one per second
    R_hat = RhythmPredictor(S, cuts, motion, class) predicted ODF
    L_rhy = || R_hat - R ||^2                       R: ground-truth ODF of the music
    R_in  = R until ``rhythm_switch[0]`` of training, then predicted with a probability
            rising linearly to 1 at ``rhythm_switch[1]`` (the published rhythm scheduling)
    z_t   = alpha_t z_0 + sigma_t eps,  v = alpha_t eps - sigma_t z_0,   t ~ U(0, 1)
    L_v   = || DiT(z_t, t; E, S, R_in, globals, Q) - v ||^2  with each condition stream dropped
            (zeroed) with probability ``cfg_dropout`` for classifier-free guidance; the cue
            track Q (cuts and motion per latent frame, when the config has one) is dropped
            together with the rhythm stream
    L     = L_v + lambda_rhy L_rhy
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import diffusion
from ..config import ModelConfig, add_config_option
from ..errors import UserError
from . import distributed
from .data import PriorData, load_prior_data, save_json
from .loop import StepLoss, train


class PriorObjective(torch.nn.Module):
    """The trained part of Diff-V2M (everything but the frozen autoencoder) and its loss."""

    def __init__(self, model: torch.nn.Module, config: ModelConfig, rhythm_weight: float = 1.0):
        super().__init__()
        self.semantic_encoder = model.semantic_encoder
        self.rhythm_predictor = model.rhythm_predictor
        self.dit = model.dit
        self.config = config
        self.rhythm_weight = rhythm_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        if "semantic" in batch:                 # a frozen encoder's tokens, computed once
            sem = batch["semantic"]
        else:
            pix = pixels_from_frames(batch["frames"], self.config.semantic.backend)  # [B,T,3,S,S]
            B, T = pix.shape[:2]
            sem = self.semantic_encoder(pix.flatten(0, 1)).view(B, T, -1)
        odf_hat = self.rhythm_predictor(sem, batch["scene_cut"], batch["motion"], batch["cls"])
        loss_rhy = F.mse_loss(odf_hat, batch["odf"])
        use_pred = batch["use_pred"][:, None]
        rhythm = torch.where(use_pred, odf_hat.detach(), batch["odf"])[..., None]
        keep = batch["keep"]                                    # [B, 3] (semantic, rhythm, colour)
        sem_c = sem * keep[:, 0, None, None]
        rhythm = rhythm * keep[:, 1, None, None]
        colour = batch["colour"] * keep[:, 2, None, None]
        cues = batch.get("cues")
        if cues is not None:
            cues = cues * keep[:, 1, None, None]
        t = batch["t"]
        x_t, v = diffusion.training_target(batch["z0"], batch["eps"], t[:, None, None])
        v_hat = self.dit(x_t, t, sem_c, rhythm, colour, batch["cls"],
                         batch["seconds_start"], batch["seconds_total"], cues)
        loss_v = F.mse_loss(v_hat, v)
        loss = loss_v + self.rhythm_weight * loss_rhy
        return loss, {"loss_v": loss_v.item(), "loss_rhythm": loss_rhy.item()}


def pixels_from_frames(frames: torch.Tensor, backend: str) -> torch.Tensor:
    """uint8 frames ``[B, T, S, S, 3]`` -> encoder input ``[B, T, 3, S, S]`` on their device.

    The same arithmetic as :func:`diffv2m.features.semantic.semantic_pixels` for frames already at the
    encoder's size (training data is stored at that size), done where the batch lives so
    the data path stays off the training loop's critical CPU time.
    """
    from ..features.semantic import semantic_normalisation
    mean, std = semantic_normalisation(backend)
    m = torch.tensor(mean, dtype=torch.float32, device=frames.device)
    s = torch.tensor(std, dtype=torch.float32, device=frames.device)
    x = (frames.float() / 255.0 - m) / s
    return x.permute(0, 1, 4, 2, 3).contiguous()


def rhythm_schedule(step: int, total: int, switch: tuple[float, float]) -> float:
    """Probability of feeding the predicted ODF to the DiT at ``step`` (0 -> 1 linearly)."""
    a, b = switch[0] * total, switch[1] * total
    if step < a:
        return 0.0
    return 1.0 if step >= b else (step - a) / max(b - a, 1e-9)


def make_batch(data: PriorData, idx: np.ndarray, gen: torch.Generator, config: ModelConfig,
               p_pred: float, device: torch.device, part: slice = slice(None)
               ) -> dict[str, torch.Tensor]:
    """Tensors of one step; every random draw comes from the step's generator ``gen``.

    The draws are made for the whole global batch ``idx`` and then cut to this rank's
    ``part``, so a step is the same computation whatever the number of processes.
    """
    shape = (len(idx), config.autoencoder.latent_dim, data.latents.shape[-1])
    noise = {"eps": torch.randn(shape, generator=gen),
             "t": torch.rand(len(idx), generator=gen),
             "keep": (torch.rand(len(idx), 3, generator=gen) >= config.dit.cfg_dropout).float(),
             "use_pred": torch.rand(len(idx), generator=gen) < p_pred}
    noise = {k: v[part] for k, v in noise.items()}
    idx = idx[part]
    z0 = torch.from_numpy(data.latents[idx]).float() / config.latent_scale
    batch = {
        "frames": torch.from_numpy(data.frames[idx]),            # uint8 [B, T, S, S, 3]
        "colour": torch.from_numpy(data.colour[idx]),            # float16 [B, T, 3072]
        "scene_cut": torch.from_numpy(data.scene_cut[idx]),
        "motion": torch.from_numpy(data.motion[idx]),
        "odf": torch.from_numpy(data.odf[idx]),
        "cls": torch.from_numpy(data.cls[idx]),
        "seconds_start": torch.from_numpy(data.seconds_start[idx]),
        "seconds_total": torch.from_numpy(data.seconds_total[idx]),
        "z0": z0,
        **noise,
    }
    if data.cues is not None and config.dit.cue_channels:
        batch["cues"] = torch.from_numpy(data.cues[idx])
    if data.semantic is not None:
        batch["semantic"] = torch.from_numpy(data.semantic[idx])
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["colour"] = batch["colour"].float()
    return batch


@torch.no_grad()
def encode_latents(autoencoder: torch.nn.Module, clips: list[dict], sample_rate: int, hop: int,
                   frames: int, device: torch.device, progress: bool = True) -> np.ndarray:
    """Deterministic latents (posterior means) of every clip's music: ``[N, C, frames]``."""
    from tqdm import tqdm
    from .. import media
    out = []
    for c in tqdm(clips, desc="latents", unit="clip", disable=not progress):
        a = media.read_audio(c["audio"], sample_rate, mono=True)
        n = frames * hop
        buf = np.zeros((1, a.shape[0], n), np.float32)
        buf[0, :, : min(n, a.shape[1])] = a[:, :n]
        z = autoencoder.encode_latent(torch.from_numpy(buf).to(device))
        zz = torch.zeros(z.shape[1], frames)
        zz[:, : min(frames, z.shape[-1])] = z[0, :, :frames].cpu()
        out.append(zz.numpy())
    return np.stack(out).astype(np.float32)


def load_autoencoder(path: Path) -> tuple[torch.nn.Module, ModelConfig]:
    """The autoencoder part of a checkpoint written by ``train autoencoder`` (or a full model)."""
    from safetensors import safe_open

    from ..models.diffv2m import autoencoder_for
    if not path.is_file():
        raise UserError(f"{path}: no such autoencoder checkpoint")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "config" not in meta:
            raise UserError(f"{path}: not a diffv2m checkpoint (no config in its metadata)")
        config = ModelConfig.from_json(meta["config"])
        sd = {k[len("autoencoder."):]: f.get_tensor(k) for k in f.keys()
              if k.startswith("autoencoder.")}
    ae = autoencoder_for(config)
    ae.load_state_dict(sd)
    return ae.eval().requires_grad_(False), config


FREEZABLE = ("semantic", "rhythm")


INIT_PARTS = {"semantic": "semantic_encoder", "rhythm": "rhythm_predictor", "dit": "dit"}


def warm_start(model: torch.nn.Module, checkpoint: Path, freeze: list[str],
               parts: list[str] | tuple[str, ...] = tuple(INIT_PARTS)) -> list[str]:
    """Copy the tensors of ``parts`` (semantic encoder, rhythm predictor, DiT) from
    ``checkpoint`` (another family's model, e.g. the audio default) whose names and shapes
    match; freeze the parts named in ``freeze``.  Returns the modules copied."""
    from safetensors import safe_open
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint}: no such checkpoint to start from")
    own = model.state_dict()
    copied = set()
    prefixes = tuple(INIT_PARTS[p] + "." for p in parts)
    with safe_open(str(checkpoint), framework="pt") as f:
        for k in f.keys():
            if not k.startswith(prefixes) or k not in own:
                continue
            t = f.get_tensor(k)
            if tuple(t.shape) == tuple(own[k].shape):
                own[k] = t
                copied.add(k.split(".")[0])
    model.load_state_dict(own)
    for name in freeze:
        if name not in FREEZABLE:
            raise UserError(f"--freeze {name}: choose from {', '.join(FREEZABLE)}")
        module = model.semantic_encoder if name == "semantic" else model.rhythm_predictor
        module.requires_grad_(False)
    return sorted(copied)


@torch.no_grad()
def semantic_tokens(encoder: torch.nn.Module, data: PriorData, config: ModelConfig,
                    device: torch.device) -> np.ndarray:
    """``[N, T, d]`` tokens of a (frozen) semantic encoder for every clip's frames."""
    encoder = encoder.to(device).eval()
    out = []
    for i in range(len(data)):
        pix = pixels_from_frames(torch.from_numpy(data.frames[i:i + 1]).to(device),
                                 config.semantic.backend)
        out.append(encoder(pix.flatten(0, 1)).cpu().numpy())
    return np.stack(out).astype(np.float32)


def train_prior(args: argparse.Namespace) -> Path:
    from ..models.checkpoint import save_checkpoint
    from ..models.diffv2m import DiffV2M

    info = distributed.setup(args.device)
    run = Path(args.run_dir)
    torch.manual_seed(args.seed)
    ae, ae_config = load_autoencoder(Path(args.autoencoder))
    config = ae_config
    if args.config:                            # the named config, with the trained autoencoder
        from ..config import resolve_config
        config = resolve_config(args.config)
        if config.latent_family != ae_config.latent_family:
            raise UserError(f"{args.autoencoder}: a {ae_config.latent_family!r} autoencoder; "
                            f"config {args.config!r} is of the {config.latent_family!r} family")
        config.autoencoder = ae_config.autoencoder
    ae.to(info.device)

    from ..cache import file_sha256
    ae_hash = file_sha256(args.autoencoder)[:16]
    pack = Path(args.pack) if args.pack else run / "prior_data.npz"
    if info.main and not pack.exists():     # rank 0 gathers features + latents once
        data, clips = load_prior_data(Path(args.manifest), "train",
                                      seconds=config.window_seconds,
                                      image_size=config.semantic.image_size,
                                      sample_rate=config.analysis_rate,
                                      cue_channels=config.dit.cue_channels,
                                      latent_frames=config.latent_frames,
                                      latent_rate=config.autoencoder.latent_rate)
        if config.latent_family == "score":
            from .score_autoencoder import encode_score_latents
            data.latents = encode_score_latents(ae, clips, config.latent_frames, info.device)
        else:
            data.latents = encode_latents(ae, clips, config.sample_rate, config.autoencoder.hop,
                                          config.latent_frames, info.device)
        data.meta = {"autoencoder": ae_hash, "manifest": str(args.manifest),
                     "cue_channels": config.dit.cue_channels}
        pack.parent.mkdir(parents=True, exist_ok=True)
        data.save(pack)
    distributed.barrier(info)
    data = PriorData.load(pack)
    if (data.meta or {}).get("autoencoder") != ae_hash:
        raise UserError(f"{pack}: made with another autoencoder; delete it or pass a new --pack")
    if config.dit.cue_channels and data.cues is None:
        raise UserError(f"{pack}: made for a config without a cue track; delete it or pass "
                        f"a new --pack")
    if not config.dit.cue_channels:
        data.cues = None                        # a pack with cues also serves a model without
    scale = float(data.latents.std()) or 1.0
    config.latent_scale = scale

    model = DiffV2M(config)
    model.autoencoder.load_state_dict(ae.state_dict())
    if args.init:
        warm_start(model, Path(args.init), args.freeze, args.init_parts)
    if "semantic" in args.freeze:               # its tokens once, instead of every step
        data.semantic = semantic_tokens(model.semantic_encoder, data, config, info.device)
    objective = PriorObjective(model, config, rhythm_weight=args.rhythm_weight).to(info.device)
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    if args.batch_size % info.world:
        raise UserError(f"--batch-size {args.batch_size} must be divisible by {info.world} processes")
    part = distributed.share(args.batch_size, info)

    def step_loss(net, step, gen):
        idx = torch.randint(len(data), (args.batch_size,), generator=gen).numpy()
        p_pred = rhythm_schedule(step, args.steps, tuple(args.rhythm_switch))
        loss, parts = net(make_batch(data, idx, gen, config, p_pred, info.device, part=part))
        return StepLoss(loss, parts, notes={"p_pred": p_pred})

    ema = train(objective, opt, step_loss, run_dir=run, steps=args.steps, lr=args.lr,
                warmup=args.warmup, ema_decay=args.ema, seed=args.seed,
                save_every=args.save_every, info=info,
                run_info={"config": config.to_dict(), "args": vars(args)}, desc="prior",
                show={"rhy": "loss_rhythm"})

    out = Path(args.out) if args.out else run / "model.safetensors"
    if info.main:
        final = DiffV2M(config)
        final.autoencoder.load_state_dict(ae.state_dict())
        final.semantic_encoder.load_state_dict(ema.shadow.semantic_encoder.state_dict())
        final.rhythm_predictor.load_state_dict(ema.shadow.rhythm_predictor.state_dict())
        final.dit.load_state_dict(ema.shadow.dit.state_dict())
        save_checkpoint(out, final, config, meta={
            "steps": str(args.steps), "seed": str(args.seed),
            "batch_size": str(args.batch_size), "device": info.device.type,
            "manifest": str((data.meta or {}).get("manifest", args.manifest))})
        save_json(run / "summary.json", {"steps": args.steps, "latent_scale": scale,
                                         "train_clips": len(data), "model": str(out)})
        if args.val_samples:
            write_validation_samples(out, Path(args.manifest), run, args.val_samples)
    distributed.barrier(info)
    distributed.teardown(info)
    return out


def write_validation_samples(checkpoint: Path, manifest: Path, run: Path, n: int) -> None:
    """Generate music for the first ``n`` validation clips into ``run/val/``."""
    from .. import synthesis
    from ..data.manifest import read_manifest
    from ..jobs import generate_file
    from ..pipeline import load_backend
    from .data import split_clips
    backend = load_backend(checkpoint)
    for c in split_clips(read_manifest(manifest, strict=False), "val")[:n]:
        generate_file(backend, c["video"], run / "val" / f"{c['id']}.take-0.wav",
                      settings=synthesis.Settings(seed=0, steps=20, cls=int(c.get("cls", 1))))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="corpus manifest.jsonl (features extracted on demand)")
    p.add_argument("--autoencoder", required=True, help="checkpoint from 'train autoencoder'")
    p.add_argument("--run-dir", required=True, help="folder for checkpoints and logs (resumes)")
    p.add_argument("--out", help="final model (default RUN_DIR/model.safetensors)")
    add_config_option(p, None, "model config (default: the autoencoder's)")
    p.add_argument("--pack", default=None,
                   help="training data pack (features + latents in one file, made on first use; "
                        "default RUN_DIR/prior_data.npz); with a pack the manifest is not read")
    p.add_argument("--init", default=None,
                   help="start the semantic encoder, rhythm predictor and DiT from this model "
                        "(tensors whose names and shapes match; e.g. the other family's default)")
    p.add_argument("--init-parts", nargs="+", default=list(INIT_PARTS), choices=list(INIT_PARTS),
                   help="which parts --init copies (default all)")
    p.add_argument("--freeze", nargs="*", default=[], choices=FREEZABLE,
                   help="keep these parts as --init gave them (semantic: its tokens are "
                        "computed once)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--rhythm-weight", type=float, default=1.0)
    p.add_argument("--rhythm-switch", type=float, nargs=2, default=(0.3, 0.7),
                   help="fractions of training where feeding the predicted ODF starts / is total")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-samples", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
