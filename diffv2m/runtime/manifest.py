"""The manifest of an exported-graph directory (``manifest.json``): its format, and
:func:`validate_manifest` (a missing file or a stale graph is a one-line
:class:`UserError`).

Written by :mod:`diffv2m.export.onnx`, read by the runtime; nothing here imports torch or onnx.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from diffv2m.errors import UserError
from diffv2m.cache import file_sha256, known_sha256

MANIFEST = "manifest.json"
FORMAT = "diffv2m-onnx"
FORMAT_VERSION = 1
#: graphs the runtime needs (``semantic_encoder`` only for the "cnn" semantic backend)
REQUIRED_GRAPHS = ("rhythm_predictor", "dit", "decoder")
OPTIONAL_GRAPHS = ("semantic_encoder", "encoder")


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
                      require_graphs: bool = True,
                      cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check ``onnx_dir`` against its manifest and return the manifest.

    Raises :class:`UserError` (one line naming the file) when the manifest is missing or
    malformed, a required graph is absent, a file listed is missing, or a file's sha256
    differs from the manifest (a stale graph: re-export).  With a ``cache_dir``, the hashes
    of files unchanged since an earlier check are remembered there
    (:func:`diffv2m.cache.known_sha256`); without one every file is hashed.
    """
    def digest(path: Path) -> str:
        return file_sha256(path) if cache_dir is None else known_sha256(path, cache_dir)

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
        for fname, want in files.items():
            fpath = d / fname
            if not fpath.is_file():
                raise UserError(f"{fpath}: missing (listed in {MANIFEST} for graph {name!r})")
            if check_hashes and digest(fpath) != want:
                raise UserError(f"{fpath}: sha256 does not match {MANIFEST} (stale or modified "
                                "graph; re-run 'diffv2m export onnx')")
    mood = manifest.get("mood_reader")
    if mood is not None:
        if not isinstance(mood, dict) or not isinstance(mood.get("file"), str) \
                or Path(mood["file"]).name != mood["file"]:
            raise UserError(f"{where}: 'mood_reader' must name a file in {d}")
        fpath = d / mood["file"]
        if not fpath.is_file():
            raise UserError(f"{fpath}: missing (listed in {MANIFEST} as the mood reader)")
        if check_hashes and digest(fpath) != mood.get("sha256"):
            raise UserError(f"{fpath}: sha256 does not match {MANIFEST} (stale or modified "
                            "mood reader; re-run 'diffv2m export onnx')")
    return manifest
