"""TensorRT engine builds and execution (tensorrt and cuda-python imported lazily, inside
functions).  Written against the TensorRT 10 Python API; NOT exercised on this project's CI
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
from typing import Any

import numpy as np

from diffv2m.errors import UserError


def _trt():
    import tensorrt as trt
    return trt


def trt_major() -> int:
    return int(str(_trt().__version__).split(".")[0])


def build_engine(onnx_path: Path, engine_path: Path, profiles: dict[str, list], *,
                 precision: str = "fp32", timing_cache: Path | None = None,
                 workspace_gb: float = 4.0) -> float:
    """Build ``onnx_path`` into ``engine_path`` with one optimisation profile; returns seconds."""
    trt = _trt()
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


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise RuntimeError("running TensorRT engines needs cuda-python "
                               "(pip install cuda-python)") from None
    return cudart


def _check(res):
    err, *rest = res if isinstance(res, tuple) else (res,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class EngineRunner:
    """One deserialised engine; ``run(feeds) -> first output`` (numpy in, numpy out)."""

    def __init__(self, name: str, path: Path, *, identity: Any = None):
        trt = _trt()
        self.name = name
        self.path = Path(path)
        self.cudart = _cudart()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise RuntimeError("deserialisation failed (built by another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = _check(self.cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        gpu = getattr(identity, "name", "GPU")
        self.provider = f"tensorrt:{gpu}"
        self._buffers: dict[str, tuple[int, int]] = {}

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(max(nbytes, 1)))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        trt = _trt()
        cu = self.cudart
        H2D, D2H = cu.cudaMemcpyKind.cudaMemcpyHostToDevice, cu.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for n in self.inputs:
            a = np.ascontiguousarray(feeds[n], trt.nptype(self.engine.get_tensor_dtype(n)))
            self.context.set_input_shape(n, a.shape)
            ptr = self._buffer(n, a.nbytes)
            _check(cu.cudaMemcpyAsync(ptr, a.ctypes.data, a.nbytes, H2D, self.stream))
            self.context.set_tensor_address(n, ptr)
        outs = {}
        for n in self.outputs:
            shape = tuple(self.context.get_tensor_shape(n))
            out = np.empty(shape, trt.nptype(self.engine.get_tensor_dtype(n)))
            outs[n] = out
            self.context.set_tensor_address(n, self._buffer(n, out.nbytes))
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError(f"{self.path}: TensorRT execution failed")
        for n, out in outs.items():
            _check(cu.cudaMemcpyAsync(out.ctypes.data, self._buffers[n][0], out.nbytes, D2H,
                                      self.stream))
        _check(cu.cudaStreamSynchronize(self.stream))
        return outs[self.outputs[0]].astype(np.float32, copy=False)

    def describe(self) -> str:
        return f"{self.name}: TensorRT engine {self.path.name} ({self.provider})"
