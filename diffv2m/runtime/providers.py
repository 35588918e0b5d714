"""Execution-provider choice for ONNX Runtime (TensorRT EP -> CUDA EP -> CPU) and the
physical-core count used as the default intra-op thread count.  onnxruntime only inside
functions; no torch.
"""
from __future__ import annotations

import os

from diffv2m.errors import UserError

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_SHORT = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda",
          "CPUExecutionProvider": "cpu"}


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads counted once)."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = set(range(os.cpu_count() or 1))
    try:
        cores: set[tuple[str, str]] = set()
        proc, phys, core = None, "0", None
        with open("/proc/cpuinfo") as f:
            for line in list(f) + ["\n"]:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "processor":
                    proc = int(val)
                elif key == "physical id":
                    phys = val
                elif key == "core id":
                    core = val
                elif not key and proc is not None:
                    if proc in allowed:
                        cores.add((phys, core if core is not None else str(proc)))
                    proc, phys, core = None, "0", None
        if cores:
            return max(1, len(cores))
    except OSError:
        pass
    return max(1, len(allowed))


def provider_order(prefer: tuple[str, ...] | list[str] | str | None = None,
                   available: list[str] | None = None) -> list[str]:
    """Providers to ask ONNX Runtime for, best first, among those it has.

    ``prefer`` narrows or reorders the choice: full names ("CUDAExecutionProvider") or short
    ones ("tensorrt", "cuda", "cpu"). The CPU provider is always last, as the fallback.
    """
    if available is None:
        import onnxruntime as ort
        available = list(ort.get_available_providers())
    if isinstance(prefer, str):
        prefer = (prefer,)
    if prefer:
        full = {v: k for k, v in _SHORT.items()}
        wanted = []
        for p in prefer:
            name = full.get(p.lower(), p) if isinstance(p, str) else p
            if name not in PROVIDER_ORDER:
                raise UserError(f"unknown execution provider {p!r}; choose from "
                                f"{', '.join(_SHORT.values())}")
            wanted.append(name)
    else:
        wanted = list(PROVIDER_ORDER)
    order = [p for p in wanted if p in available]
    if "CPUExecutionProvider" not in order:
        order.append("CPUExecutionProvider")
    return order
