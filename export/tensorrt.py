"""TensorRT engine builds (tensorrt imported lazily, inside functions); running them is
:mod:`diffv2m.runtime.tensorrt`.  Written against the TensorRT 10 Python API; NOT exercised on this project's CI
(no GPU there): `diffv2m engines build/verify` on a GPU machine is its test.

Precision (DESIGN 4b): TensorRT < 11 builds weakly typed networks and takes the FP16/BF16
builder flags (``--precision fp16|bf16``, aliases ``--fp16``/``--bf16``; norms may still
run in fp16 there).  TensorRT >= 11 only builds strongly typed networks: the precision comes
from the ONNX graph itself, so fp16/bf16 need a reduced-precision graph with fp32 islands
around the norms, which ``diffv2m export onnx`` does not write yet -> a one-line UserError;
fp32 builds work on every version.
"""
from __future__ import annotations

import time
from pathlib import Path

from diffv2m.errors import UserError
from diffv2m.runtime.tensorrt import load_tensorrt, trt_major


def build_engine(onnx_path: Path, engine_path: Path, profiles: dict[str, list], *,
                 precision: str = "fp32", timing_cache: Path | None = None,
                 workspace_gb: float = 4.0) -> float:
    """Build ``onnx_path`` into ``engine_path`` with one optimisation profile; returns seconds."""
    trt = load_tensorrt()
    major = trt_major()
    if precision != "fp32" and major >= 11:
        raise UserError(f"TensorRT {trt.__version__} builds strongly typed networks only: "
                        f"{precision} needs a {precision} ONNX graph, which this exporter does "
                        "not write yet; use --precision fp32")
    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if major < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"{onnx_path}: TensorRT cannot parse this graph ({errs[:300]})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=True)
    profile = builder.create_optimization_profile()
    for name, (mn, op, mx) in profiles.items():
        profile.set_shape(name, tuple(mn), tuple(op), tuple(mx))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise UserError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    from diffv2m.atomic import atomic_write_bytes
    atomic_write_bytes(engine_path, bytes(blob))
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return time.perf_counter() - t0
