"""The TensorRT engine cache: where engines live, what they were built from, which one fits.

Pure Python (no torch, no tensorrt at import): every rule here is testable on a machine
without a GPU, with real ONNX files and a fake :class:`GpuIdentity`.

Layout::

    CACHE/                                   default $DIFFV2M_CACHE/engines (~/.cache/diffv2m/engines)
      <gpu-slug>-sm<cc>-trt<version>/        one folder per GPU model x compute capability x TRT
        manifest.json                        {"format": "diffv2m-engines", "gpu": {...},
                                              "engines": {"dit:fp32": {...}, ...}}
        dit-<onnx sha16>-fp32.engine
        timing.cache                         TensorRT timing cache, reused by later builds

An engine record names the graph, the precision, the sha256 of the ONNX file it was built
from, the engine file's own sha256, the optimisation profiles and the build time.  An engine
is used only when GPU name, compute capability, TensorRT version and ONNX hash all match;
:func:`lookup` otherwise returns ``None`` and a one-line reason the runtime prints before
falling back to ONNX Runtime.  This module reads the cache; :mod:`diffv2m.export.engines`
enters newly built engines into it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from diffv2m.errors import UserError
from diffv2m.cache import file_sha256

FORMAT = "diffv2m-engines"
PRECISIONS = ("fp32", "fp16", "bf16")
#: lookup order when no precision is asked for: fastest first
PREFERENCE = ("fp16", "bf16", "fp32")
ENGINE_GRAPHS = ("semantic_encoder", "rhythm_predictor", "dit", "decoder")


class EnginesUnavailable(Exception):
    """No TensorRT or no NVIDIA GPU here (the message is one line saying which)."""


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is tied to: the GPU model, its compute capability and TensorRT."""
    name: str                   # e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str     # e.g. "9.0"
    trt_version: str            # e.g. "10.3.0"

    @property
    def key(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "gpu"
        cc = self.compute_capability.replace(".", "")
        return f"{slug}-sm{cc}-trt{self.trt_version}"

    def describe(self) -> str:
        return f"{self.name} (sm {self.compute_capability}, TensorRT {self.trt_version})"


@dataclass
class EngineRecord:
    graph: str
    precision: str
    onnx_sha256: str
    file: str
    sha256: str
    profiles: dict[str, Any]
    built: str = ""
    build_seconds: float = 0.0
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        return d


def default_engine_cache() -> Path:
    from diffv2m.cache import default_cache_dir
    return default_cache_dir() / "engines"


def normalise_precision(p: str) -> str:
    p = p.lower().lstrip("-")
    if p not in PRECISIONS:
        raise UserError(f"unknown precision {p!r}; choose one of {', '.join(PRECISIONS)}")
    return p


# ---------------------------------------------------------------- identity

def tensorrt_version() -> str:
    """The installed TensorRT version, without importing it (EnginesUnavailable if none)."""
    import importlib.metadata
    import importlib.util
    if importlib.util.find_spec("tensorrt") is None:
        raise EnginesUnavailable("the tensorrt package is not installed (extra 'gpu'; "
                                 "TensorRT engines need an NVIDIA GPU)")
    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_cu12", "tensorrt-cu11"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    import tensorrt                                       # noqa: F401  (lazy, last resort)
    return str(tensorrt.__version__)


def detect_identity() -> GpuIdentity:
    """This machine's GPU and TensorRT, or :class:`EnginesUnavailable` with one line why not."""
    trt_version = tensorrt_version()
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise EnginesUnavailable("no NVIDIA GPU found (nvidia-smi is not on PATH)")
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EnginesUnavailable(f"no usable NVIDIA GPU (nvidia-smi failed: {e})") from None
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    if out.returncode != 0 or not lines:
        msg = (out.stderr or out.stdout).strip().splitlines()
        raise EnginesUnavailable("no usable NVIDIA GPU (nvidia-smi: "
                                 f"{msg[0] if msg else 'no devices'})")
    index = int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or 0) \
        if os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].isdigit() else 0
    name, _, cc = lines[min(index, len(lines) - 1)].partition(",")
    return GpuIdentity(name.strip(), cc.strip(), trt_version)


def require_identity() -> GpuIdentity:
    """:func:`detect_identity`, as a one-line :class:`UserError` for the CLI."""
    try:
        return detect_identity()
    except EnginesUnavailable as e:
        raise UserError(f"TensorRT engines are unavailable here: {e}") from None


# ---------------------------------------------------------------- manifest

def gpu_dir(cache_dir: str | os.PathLike | None, identity: GpuIdentity) -> Path:
    return Path(cache_dir if cache_dir is not None else default_engine_cache()) / identity.key


def read_cache_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        return {"format": FORMAT, "gpu": None, "engines": {}}
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable engine manifest ({e}); delete the folder") from None
    if m.get("format") != FORMAT:
        raise UserError(f"{path}: not a diffv2m engine manifest")
    return m


def engine_filename(graph: str, onnx_sha256: str, precision: str) -> str:
    return f"{graph}-{onnx_sha256[:16]}-{precision}.engine"


def list_engines(cache_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every engine in the cache (all GPUs): gpu key + record fields + ``exists``."""
    root = Path(cache_dir if cache_dir is not None else default_engine_cache())
    rows = []
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        m = read_cache_manifest(folder)
        for key, e in sorted(m.get("engines", {}).items()):
            rows.append({"gpu_key": folder.name, "gpu": m.get("gpu"), **e,
                         "exists": (folder / e["file"]).is_file()})
    return rows


def lookup(graph: str, onnx_sha256: str, *, identity: GpuIdentity,
           cache_dir: str | os.PathLike | None = None, precision: str | None = None,
           check_file_hash: bool = True) -> tuple[EngineRecord | None, str]:
    """The engine to run ``graph`` (whose ONNX file hashes to ``onnx_sha256``) on this GPU.

    Returns ``(record, "")`` or ``(None, reason)`` with a one-line reason: no cache, no
    engines for this GPU / TensorRT (naming what the cache has instead), no engine for this
    graph, a stale engine (built from another ONNX file), or a missing / modified file.
    """
    root = Path(cache_dir if cache_dir is not None else default_engine_cache())
    if not root.is_dir():
        return None, f"no engine cache at {root} (run 'diffv2m engines build')"
    folder = root / identity.key
    m = read_cache_manifest(folder) if folder.is_dir() else {"engines": {}}
    if not m.get("engines"):
        others = []
        for p in sorted(root.iterdir()):
            if p.is_dir() and p.name != identity.key and (p / "manifest.json").is_file():
                g = read_cache_manifest(p).get("gpu") or {}
                others.append(f"{g.get('name', p.name)} sm {g.get('compute_capability', '?')} "
                              f"TensorRT {g.get('trt_version', '?')}" if g else p.name)
        have = f"; the cache holds engines for {', '.join(others)}" if others else ""
        return None, (f"no engines for {identity.describe()}{have} (engines are tied to the "
                      "GPU architecture and TensorRT version: run 'diffv2m engines build')")
    precision = normalise_precision(precision) if precision else None
    wanted = [precision] if precision else list(PREFERENCE)
    entries = [(p, m["engines"].get(f"{graph}:{p}")) for p in wanted]
    entries = [(p, e) for p, e in entries if e]
    if not entries:
        what = f"{precision} engine" if precision else "engine"
        return None, f"no {what} for graph {graph!r} built on {identity.describe()}"
    stale = None
    for p, e in entries:
        if e["onnx_sha256"] != onnx_sha256:
            stale = (f"the {p} engine for {graph!r} is stale: built from ONNX "
                     f"{e['onnx_sha256'][:12]}, the graph is now {onnx_sha256[:12]} "
                     "(run 'diffv2m engines build')")
            continue
        path = folder / e["file"]
        if not path.is_file():
            stale = f"{path}: engine file missing (run 'diffv2m engines build')"
            continue
        if check_file_hash and file_sha256(path) != e["sha256"]:
            stale = f"{path}: engine file modified since it was built (rebuild it)"
            continue
        return EngineRecord(**{k: v for k, v in e.items() if k != "path"}, path=path), ""
    return None, stale or "no matching engine"
