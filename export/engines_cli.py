"""``diffv2m engines build|list|verify``: TensorRT engines for this GPU (see engines.py).

Without tensorrt or without an NVIDIA GPU every command prints one line saying so and exits 2.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from diffv2m.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m engines",
                                description="Build, list and verify TensorRT engines.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("build", "build engines for this GPU from exported ONNX graphs"),
                        ("list", "list the engines in the cache"),
                        ("verify", "check each engine against ONNX Runtime on the same inputs")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--onnx-dir", help="exported graphs (default: the embedded model's)")
        s.add_argument("--cache", help="engine cache (default: ~/.cache/diffv2m/engines)")
        if name != "list":
            s.add_argument("--precision", default=None,
                           help="fp32 | fp16 | bf16 (build default fp32)")
            s.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                           help="alias of --precision fp16")
            s.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                           help="alias of --precision bf16")
        if name == "verify":
            s.add_argument("--rel-tol", type=float, default=None,
                           help="max abs error / output scale (default 1e-3 fp32, 2e-2 fp16/bf16)")
    return p


def _onnx_dir(args) -> Path:
    if args.onnx_dir:
        return Path(args.onnx_dir)
    from diffv2m.assets import DEFAULT_MODEL, model_onnx_dir
    return model_onnx_dir(DEFAULT_MODEL)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from diffv2m.export import engines as builds
    from diffv2m.runtime import engines
    identity = engines.require_identity()          # one-line UserError -> exit 2
    if args.cmd == "list":
        rows = engines.list_engines(args.cache)
        if not rows:
            print("no engines in the cache")
        for r in rows:
            mark = "" if r["gpu_key"] == identity.key else "  (other GPU/TensorRT)"
            print(f"{r['gpu_key']}  {r['graph']:<16} {r['precision']}  onnx {r['onnx_sha256'][:12]}"
                  f"  {r['file']}{'' if r['exists'] else ' MISSING'}{mark}")
        return 0
    from diffv2m.runtime.manifest import validate_manifest
    onnx_dir = _onnx_dir(args)
    manifest = validate_manifest(onnx_dir)
    if args.cmd == "build":
        from diffv2m.export import tensorrt as trt_build
        precision = engines.normalise_precision(args.precision or "fp32")
        folder = engines.gpu_dir(args.cache, identity)
        folder.mkdir(parents=True, exist_ok=True)
        profiles = builds.profiles_for(manifest)
        for name, prof in profiles.items():
            g = manifest["graphs"][name]
            rec, _ = engines.lookup(name, g["sha256"], identity=identity, cache_dir=args.cache,
                                    precision=precision)
            if rec is not None:
                print(f"{rec.path}  (up to date)")
                continue
            path = folder / engines.engine_filename(name, g["sha256"], precision)
            secs = trt_build.build_engine(onnx_dir / g["file"], path, prof, precision=precision,
                                          timing_cache=folder / "timing.cache")
            builds.record_engine(args.cache, identity, name, precision, g["sha256"], path,
                                 profiles=prof, build_seconds=secs)
            print(f"{path}  ({secs:.1f} s)")
        return 0
    # verify
    return verify(onnx_dir, manifest, identity, args)


def verify(onnx_dir: Path, manifest: dict, identity, args) -> int:
    import numpy as np
    import onnxruntime as ort
    from diffv2m.config import ModelConfig
    from diffv2m.export import engines as builds
    from diffv2m.runtime import engines
    from diffv2m.runtime.tensorrt import EngineRunner
    cfg = ModelConfig.from_dict(manifest["config"])
    failed = 0
    profiles = builds.profiles_for(manifest)
    for name, prof in profiles.items():
        g = manifest["graphs"][name]
        rec, reason = engines.lookup(name, g["sha256"], identity=identity, cache_dir=args.cache,
                                     precision=args.precision)
        if rec is None:
            print(f"{name}: {reason}")
            failed += 1
            continue
        rng = np.random.default_rng(0)
        feeds = {}
        for inp in g["inputs"]:
            shape = prof[inp["name"]][1]
            if inp["dtype"] == "int64":
                feeds[inp["name"]] = rng.integers(0, cfg.dit.num_classes, shape).astype(np.int64)
            else:
                feeds[inp["name"]] = rng.random(shape).astype(np.float32)
        sess = ort.InferenceSession(str(onnx_dir / g["file"]), providers=["CPUExecutionProvider"])
        want = sess.run(None, feeds)[0]
        got = EngineRunner(name, rec.path, identity=identity).run(feeds)
        scale = float(np.abs(want).max()) or 1.0
        err = float(np.abs(got - want).max())
        tol = args.rel_tol if args.rel_tol is not None else (1e-3 if rec.precision == "fp32" else 2e-2)
        ok = err <= tol * scale
        failed += not ok
        print(f"{name}: {rec.precision} max abs err {err:.3g} (scale {scale:.3g}) "
              f"{'ok' if ok else 'FAILED'}")
    if failed:
        raise UserError(f"{failed} engine(s) failed verification or are missing")
    return 0
