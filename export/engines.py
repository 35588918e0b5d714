"""The build side of the TensorRT engine cache (:mod:`diffv2m.runtime.engines` reads it):
entering a newly built engine into its GPU folder's manifest, and the optimisation profiles
an engine is built with.  Pure Python (no torch, no tensorrt at import).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from diffv2m.cache import file_sha256
from diffv2m.runtime.engines import (ENGINE_GRAPHS, EngineRecord, GpuIdentity, gpu_dir,
                                     read_cache_manifest)


def _write_cache_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from diffv2m.atomic import atomic_path
    with atomic_path(folder / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.chmod(tmp, 0o644)


def record_engine(cache_dir: str | os.PathLike | None, identity: GpuIdentity, graph: str,
                  precision: str, onnx_sha256: str, engine_path: str | os.PathLike, *,
                  profiles: dict[str, Any] | None = None,
                  build_seconds: float = 0.0) -> EngineRecord:
    """Enter an engine file (already inside the GPU folder) into that folder's manifest,
    replacing any older engine of the same graph and precision (whose file is deleted)."""
    folder = gpu_dir(cache_dir, identity)
    engine_path = Path(engine_path)
    if engine_path.parent.resolve() != folder.resolve():
        raise ValueError(f"{engine_path}: engines must live in {folder}")
    m = read_cache_manifest(folder)
    m["gpu"] = asdict(identity)
    key = f"{graph}:{precision}"
    old = m["engines"].get(key)
    if old and old.get("file") != engine_path.name:
        (folder / old["file"]).unlink(missing_ok=True)
    rec = EngineRecord(graph=graph, precision=precision, onnx_sha256=onnx_sha256,
                       file=engine_path.name, sha256=file_sha256(engine_path),
                       profiles=profiles or {}, build_seconds=round(build_seconds, 2),
                       built=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), path=engine_path)
    m["engines"][key] = rec.to_json()
    _write_cache_manifest(folder, m)
    return rec


# ---------------------------------------------------------------- profiles

def profiles_for(manifest: dict[str, Any], *, max_batch: int = 2) -> dict[str, dict[str, list]]:
    """Optimisation profiles ``{graph: {input: [min, opt, max] shapes}}`` covering what the
    runtime asks for: batch 1..``max_batch`` (CFG batch 2), seconds 1..window (opt: a full
    window), the window's latent frames for the DiT (fixed), 1..window frames for the decoder,
    1..64 images per semantic call (the runtime batches 64)."""
    from diffv2m.config import ModelConfig
    cfg = ModelConfig.from_dict(manifest["config"])
    W = min(cfg.window_seconds, cfg.rhythm.max_seconds, cfg.dit.max_seconds)
    L = cfg.latent_frames
    hop = cfg.autoencoder.hop
    ranges = {
        "batch": (1, max_batch, max_batch), "seconds": (1, W, W), "frames": (L, L, L),
        "samples": (hop, W * cfg.sample_rate, W * cfg.sample_rate),
    }
    per_graph = {"semantic_encoder": {"frames": (1, 16, 64)},
                 "decoder": {"frames": (1, L, L), "batch": (1, 1, max_batch)},
                 "rhythm_predictor": {"batch": (1, 1, max_batch)}}
    out: dict[str, dict[str, list]] = {}
    for name, g in manifest["graphs"].items():
        if name not in ENGINE_GRAPHS:
            continue
        prof = {}
        for inp in g["inputs"]:
            mn, op, mx = [], [], []
            for dim in inp["shape"]:
                if isinstance(dim, str):
                    r = per_graph.get(name, {}).get(dim, ranges.get(dim, (1, 1, 1)))
                    mn.append(r[0]); op.append(r[1]); mx.append(r[2])
                else:
                    mn.append(dim); op.append(dim); mx.append(dim)
            prof[inp["name"]] = [mn, op, mx]
        out[name] = prof
    return out
