"""Running TensorRT engines (tensorrt and cuda-python imported lazily, inside functions);
:mod:`diffv2m.export.tensorrt` builds them.  Written against the TensorRT 10 Python API; NOT
exercised on this project's CI (no GPU there): `diffv2m engines verify` on a GPU machine is
its test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def load_tensorrt():
    import tensorrt as trt
    return trt


def trt_major() -> int:
    return int(str(load_tensorrt().__version__).split(".")[0])


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
        trt = load_tensorrt()
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
        trt = load_tensorrt()
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
