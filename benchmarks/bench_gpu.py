"""GPU figures: the paper config's generation speed, and CPU-vs-CUDA parity of a checkpoint.

    python benchmarks/bench_gpu.py paper [--seconds 30] [--steps 250 50] [--precision fp32 bf16]
    python benchmarks/bench_gpu.py parity --features FEATS.npz [--checkpoint CKPT]

``paper`` builds the published Diff-V2M sizes (``paper_config()``, 1.595 B parameters) with
random weights directly on the GPU and generates ``--seconds`` of 44.1 kHz stereo through the
same :func:`diffv2m.synthesis.synthesise` the product uses (CFG batch 2, one 30 s window).
The semantic tokens come from a random-weight open_clip ViT-B/32 when open_clip imports,
else from random 512-d vectors (said in the output).  Printed: parameters, time per sampler
step (DiT at CFG batch 2), decoder time, end to end (semantic + rhythm predictor + sampling +
decoding; video decoding excluded), peak GPU memory, for each precision and step count.

``parity`` runs one checkpoint (default: the embedded model) on the CPU and on CUDA from the
same saved features (``VideoFeatures.save``, so no PyAV is needed on the GPU machine) and
prints the largest differences of the conditions, of one DiT step, and of the final audio.
Needs a CUDA GPU; nothing in CI runs this file.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync():
    import torch
    torch.cuda.synchronize()


def random_features(seconds: int, size: int, seed: int = 0):
    """A stand-in for VideoFeatures: random frames/colour, a cut every 4 s, a motion ramp."""
    from types import SimpleNamespace
    rng = np.random.default_rng(seed)
    colour = rng.random((seconds, 3072)).astype(np.float32)
    colour /= colour.sum(1, keepdims=True)
    cut = np.zeros(seconds, np.float32)
    cut[::4] = 1.0
    return SimpleNamespace(
        duration=float(seconds), seconds=seconds,
        frames_1fps=rng.integers(0, 256, (seconds, size, size, 3), dtype=np.uint8),
        colour=colour, scene_cut=cut, cut_times=np.arange(0, seconds, 4, dtype=np.float64),
        motion=np.linspace(0, 1, seconds, dtype=np.float32))


class ClipBackend:
    """TorchBackend whose ``encode_semantic`` runs an open_clip image tower (paper path)."""

    def __init__(self, inner, clip):
        self._inner, self._clip = inner, clip
        self.name, self.config = inner.name, inner.config

    def encode_semantic(self, frames):
        if self._clip is None:                   # no open_clip: random 512-d tokens
            return np.random.default_rng(1).standard_normal((len(frames), 512)).astype(np.float32)
        return self._clip.encode(frames)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def bench_paper(args) -> dict:
    import torch

    from diffv2m import synthesis
    from diffv2m.config import paper_config
    from diffv2m.models.diffv2m import DiffV2M
    from diffv2m.pipeline import TorchBackend

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = paper_config()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = DiffV2M(cfg)
    _sync()
    build_s = time.perf_counter() - t0
    counts = model.parameter_counts()
    clip, clip_note = None, "random 512-d tokens (open_clip not importable)"
    try:
        import open_clip

        from diffv2m.features.semantic import OpenClipEncoder
        tower = open_clip.create_model("ViT-B-32", pretrained=None)
        clip = OpenClipEncoder(tower, image_size=224, out_dim=512, device="cuda")
        clip_note = "open_clip ViT-B-32, random weights, on the GPU"
    except Exception as exc:  # noqa: BLE001  (report and go on)
        clip_note += f": {type(exc).__name__}: {exc}"
    feats = random_features(args.seconds, 224)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "build_s": round(build_s, 2), "parameters": counts, "semantic": clip_note,
           "seconds": args.seconds, "latent_frames": cfg.latent_frames, "runs": []}
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1), flush=True)
    for precision in args.precision:
        backend = ClipBackend(TorchBackend(model, cfg, device="cuda", precision=precision), clip)
        for steps in args.steps:
            settings = synthesis.Settings(seed=0, steps=steps, cfg_scale=3.0, sampler=args.sampler)
            synthesis.synthesise(backend, synthesis.conditions_from_features(backend, feats),
                                 synthesis.Settings(seed=0, steps=2, sampler=args.sampler))  # warm
            torch.cuda.reset_peak_memory_stats()
            _sync()
            ends = []
            for rep in range(args.repeat):
                t0 = time.perf_counter()
                cond = synthesis.conditions_from_features(backend, feats)
                t1 = time.perf_counter()
                take = synthesis.synthesise(backend, cond, settings)
                _sync()
                t2 = time.perf_counter()
                ends.append((t1 - t0, t2 - t1, take.timings))
            cond_s, synth_s, tim = min(ends, key=lambda e: e[0] + e[1])
            a = take.audio
            row = {"precision": precision, "steps": steps, "sampler": args.sampler,
                   "conditions_s": round(cond_s, 3),
                   "step_ms": round(1000 * tim["sampling"] / steps, 2),
                   "sampling_s": round(tim["sampling"], 3), "decoding_s": round(tim["decoding"], 3),
                   "end_to_end_s": round(cond_s + synth_s, 3),
                   "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                   "audio_shape": list(a.shape), "audio_finite": bool(np.isfinite(a).all())}
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    return out


def parity(args) -> dict:
    import torch

    from diffv2m import synthesis
    from diffv2m.features.video import VideoFeatures
    from diffv2m.pipeline import load_backend

    feats = VideoFeatures.load(args.features)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    takes, conds, steps = {}, {}, {}
    settings = synthesis.Settings(seed=args.seed, steps=args.steps)
    for name, device, precision in (("cpu", "cpu", "fp32"), ("cuda", "cuda", "fp32"),
                                    ("cuda-bf16", "cuda", "bf16")):
        b = load_backend(args.checkpoint, device=device, precision=precision)
        conds[name] = synthesis.conditions_from_features(b, feats)
        cfg = b.config
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, cfg.autoencoder.latent_dim, cfg.latent_frames)).astype(np.float32)
        c = conds["cpu"]
        W = cfg.window_seconds
        steps[name] = b.denoise(x, np.array([0.7, 0.7], np.float32),
                                np.repeat(c.semantic[None, :W], 2, 0),
                                np.repeat(c.odf[None, :W, None], 2, 0),
                                np.repeat(c.colour[None, :W], 2, 0), np.array([1, 1]),
                                np.zeros(2, np.float32), np.full(2, c.duration, np.float32))
        t0 = time.perf_counter()
        takes[name] = synthesis.synthesise(b, conds[name], settings)
        out[f"{name}_generate_s"] = round(time.perf_counter() - t0, 3)
        again = synthesis.synthesise(b, conds[name], settings)
        out[f"{name}_repeatable"] = bool(np.array_equal(again.audio, takes[name].audio))

    def rel(a, b):
        return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))

    for name in ("cuda", "cuda-bf16"):
        a, ref = takes[name].audio, takes["cpu"].audio
        n = min(a.shape[-1], ref.shape[-1])
        err = a[..., :n] - ref[..., :n]
        out[name] = {
            "semantic_max_rel": rel(conds[name].semantic, conds["cpu"].semantic),
            "odf_max_abs": float(np.abs(conds[name].odf - conds["cpu"].odf).max()),
            "dit_step_max_rel": rel(steps[name], steps["cpu"]),
            "audio_max_abs": float(np.abs(err).max()),
            "audio_snr_db": float(10 * np.log10((ref ** 2).sum() / max((err ** 2).sum(), 1e-20))),
        }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("paper")
    a.add_argument("--seconds", type=int, default=30)
    a.add_argument("--steps", type=int, nargs="+", default=[250, 50])
    a.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    a.add_argument("--sampler", default="ddim")
    a.add_argument("--repeat", type=int, default=2)
    b = sub.add_parser("parity")
    b.add_argument("--features", required=True)
    b.add_argument("--checkpoint", default=None)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--steps", type=int, default=25)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    out = bench_paper(args) if args.cmd == "paper" else parity(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
