"""Torch eager vs ONNX Runtime, side by side in one process on this machine.

    python benchmarks/bench_runtime.py [--checkpoint CKPT] [--seconds 10 30 120] [--steps N]

Default model: the embedded one (diffv2m/assets/default) when present, else pass --checkpoint
(``--random-small`` writes a random-weight checkpoint of the full ``small`` config: speed
only).  The checkpoint is exported to a temp dir first.  Prints per-component medians
(semantic for one window of frames, rhythm for one window, one DiT step at CFG batch 2 vs 2 x
batch 1, decoder for one window), end to end for each length (a synthetic PyAV video), first
generation vs new-seed regeneration (features cached), ratios, and peak RSS per phase.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_time(fn, repeat: int) -> float:
    fn()                                                    # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def components(backends, cfg, repeat):
    from diffv2m.export.onnx import example_inputs
    W, L = cfg.window_seconds, cfg.latent_frames
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (W, cfg.semantic.image_size, cfg.semantic.image_size, 3), np.uint8)
    rp = example_inputs("rhythm_predictor", cfg, batch=1, seconds=W)
    d2 = example_inputs("dit", cfg, batch=2, seconds=W, frames=L)
    d1 = {k: v[:1] for k, v in d2.items()}
    z = example_inputs("decoder", cfg, batch=1, frames=L)["z"]
    rows = {}
    for name, b in backends.items():
        rows[name] = {
            "semantic (one window)": median_time(lambda: b.encode_semantic(frames), repeat),
            "rhythm (one window)": median_time(lambda: b.predict_rhythm(**rp), repeat),
            "DiT step, B=2": median_time(lambda: b.denoise(**d2), repeat),
            "DiT step, 2 x B=1": median_time(lambda: (b.denoise(**d1), b.denoise(**d1)), repeat),
            "decoder (one window)": median_time(lambda: b.decode(z), max(1, repeat // 2)),
        }
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--random-small", action="store_true",
                   help="random weights, full 'small' config (speed only)")
    p.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 120])
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-torch-e2e-above", type=float, default=1e9,
                   help="skip torch end to end for lengths above this (slow machines)")
    args = p.parse_args(argv)

    import torch
    from mediagen import make_video
    from diffv2m import jobs, synthesis
    from diffv2m.assets import default_checkpoint
    from diffv2m.export.onnx import export_onnx
    from diffv2m.runtime.providers import physical_cores
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.pipeline import load_backend

    tmp = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    ckpt = args.checkpoint
    if args.random_small:
        from diffv2m.config import small_config
        from diffv2m.models.checkpoint import save_checkpoint
        from diffv2m.models.diffv2m import DiffV2M
        torch.manual_seed(0)
        cfg = small_config()
        ckpt = save_checkpoint(tmp / "random-small.safetensors", DiffV2M(cfg), cfg, {"random": True})
    elif ckpt is None:
        if not default_checkpoint().exists():
            p.error("no embedded default model here: pass --checkpoint or --random-small")
        ckpt = default_checkpoint()
    threads = args.threads or physical_cores()
    print(f"checkpoint {ckpt}; threads {threads}; torch {torch.__version__}")
    t0 = time.perf_counter()
    export_onnx(ckpt, tmp / "onnx", parity=True)
    print(f"export: {time.perf_counter() - t0:.1f} s")
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    tb = load_backend(ckpt, threads=threads)
    t_load_torch = time.perf_counter() - t0
    t0 = time.perf_counter()
    ob = load_runtime(tmp / "onnx", threads=threads, cache_dir=tmp / "cache")
    t_load_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ob = load_runtime(tmp / "onnx", threads=threads, cache_dir=tmp / "cache")
    t_load_warm = time.perf_counter() - t0
    print(f"load: torch {t_load_torch:.2f} s; onnxruntime {t_load_cold:.2f} s cold, "
          f"{t_load_warm:.2f} s with cached optimised graphs ({ob.name})")
    cfg = ob.config
    backends = {"torch": tb, "onnxruntime": ob}

    print(f"\nper component (median of {args.repeat}), seconds:")
    rows = components(backends, cfg, args.repeat)
    print(f"  {'component':<24}{'torch':>10}{'ort':>10}{'torch/ort':>11}")
    for comp in rows["torch"]:
        a, b = rows["torch"][comp], rows["onnxruntime"][comp]
        print(f"  {comp:<24}{a:>10.4f}{b:>10.4f}{a / b:>10.2f}x")

    steps = args.steps or "the model's"
    print(f"\nend to end ({steps} steps, dpmpp-2m, CFG 3), seconds:")
    print(f"  {'music':>6} {'backend':<12}{'first':>9}{'new seed':>10}{'RTF':>7}{'peak RSS MB':>13}")
    e2e = {}
    for secs in args.seconds:
        video = make_video(tmp / f"v{int(secs)}.mp4", seconds=secs, size=(160, 96),
                           cut_times=tuple(np.arange(2.5, secs, 3.7))).path
        for name, b in backends.items():
            if name == "torch" and secs > args.skip_torch_e2e_above:
                continue
            feat_cache = tmp / f"features-{name}-{int(secs)}"
            t0 = time.perf_counter()
            jobs.generate_file(b, video, tmp / "out.wav", settings=synthesis.Settings(
                seed=1, steps=args.steps), cache_dir=feat_cache)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            jobs.generate_file(b, video, tmp / "out.wav", settings=synthesis.Settings(
                seed=2, steps=args.steps), cache_dir=feat_cache)
            again = time.perf_counter() - t0
            e2e[(secs, name)] = first
            print(f"  {secs:>6.0f} {name:<12}{first:>9.2f}{again:>10.2f}{secs / first:>7.2f}"
                  f"{peak_rss_mb():>13.0f}")
        if (secs, "torch") in e2e:
            print(f"  {secs:>6.0f} speed-up onnxruntime vs torch: "
                  f"{e2e[(secs, 'torch')] / e2e[(secs, 'onnxruntime')]:.2f}x")
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB (before loading models: {rss0:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
