"""Torch-free helpers shared by the exporter, the runtime and the engine cache.

* the manifest of an exported-graph directory (``manifest.json``): format, hashing and
  :func:`validate_manifest` (missing files and stale graphs are :class:`UserError`);
* execution-provider choice for ONNX Runtime (TensorRT EP -> CUDA EP -> CPU) and the
  physical-core count used as the default intra-op thread count.

Nothing here imports torch or onnx; onnxruntime only inside functions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from diffv2m.errors import UserError
from diffv2m.jobs import file_sha256

MANIFEST = "manifest.json"
FORMAT = "diffv2m-onnx"
FORMAT_VERSION = 1
#: graphs the runtime needs (``semantic_encoder`` only for the "cnn" semantic backend)
REQUIRED_GRAPHS = ("rhythm_predictor", "dit", "decoder")
OPTIONAL_GRAPHS = ("semantic_encoder", "encoder")
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_SHORT = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda",
          "CPUExecutionProvider": "cpu"}


def read_manifest(onnx_dir: str | os.PathLike) -> dict[str, Any]:
    """``manifest.json`` of ``onnx_dir`` parsed (UserError when missing or unreadable)."""
    d = Path(onnx_dir)
    path = d / MANIFEST
    if not d.is_dir():
        raise UserError(f"{d}: no such directory of exported graphs "
                        "(run 'diffv2m export onnx CHECKPOINT -o DIR')")
    if not path.is_file():
        raise UserError(f"{path}: missing; not a directory of exported graphs "
                        "(run 'diffv2m export onnx CHECKPOINT -o DIR')")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a diffv2m ONNX manifest (format {manifest.get('format')!r})"
                        if isinstance(manifest, dict) else f"{path}: not a JSON object")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{path}: written by a newer diffv2m (format_version "
                        f"{manifest.get('format_version')}); upgrade diffv2m or re-export")
    return manifest


def validate_manifest(onnx_dir: str | os.PathLike, *, check_hashes: bool = True,
                      require_graphs: bool = True) -> dict[str, Any]:
    """Check ``onnx_dir`` against its manifest and return the manifest.

    Raises :class:`UserError` (one line naming the file) when the manifest is missing or
    malformed, a required graph is absent, a file listed is missing, or a file's sha256
    differs from the manifest (a stale graph: re-export).
    """
    d = Path(onnx_dir)
    manifest = read_manifest(d)
    where = d / MANIFEST
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict):
        raise UserError(f"{where}: no 'graphs' table")
    if not isinstance(manifest.get("config"), dict):
        raise UserError(f"{where}: no model 'config'")
    need = list(REQUIRED_GRAPHS) if require_graphs else []
    if require_graphs and manifest["config"].get("semantic", {}).get("backend", "cnn") == "cnn":
        need.append("semantic_encoder")
    for name in need:
        if name not in graphs:
            raise UserError(f"{where}: graph {name!r} is missing (re-run 'diffv2m export onnx')")
    for name, g in graphs.items():
        files = g.get("files")
        if not isinstance(files, dict) or g.get("file") not in files:
            raise UserError(f"{where}: graph {name!r} has no file list")
        for fname, digest in files.items():
            fpath = d / fname
            if not fpath.is_file():
                raise UserError(f"{fpath}: missing (listed in {MANIFEST} for graph {name!r})")
            if check_hashes and file_sha256(fpath) != digest:
                raise UserError(f"{fpath}: sha256 does not match {MANIFEST} (stale or modified "
                                "graph; re-run 'diffv2m export onnx')")
    return manifest


# ---------------------------------------------------------------- providers, threads

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
