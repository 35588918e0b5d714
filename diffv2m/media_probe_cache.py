"""A video's probe kept in the cache, so a new take of the same file opens without PyAV.

:func:`probe` answers what :func:`diffv2m.media.probe` answers, from ``<cache_dir>/probe/``
when an entry for the file's identity is there: :func:`diffv2m.media.file_identity` (resolved
path, size and modification time, as the feature cache keys a file) and
:data:`PROBE_VERSION`.  A miss probes the file and keeps the answer.  The entry is a small
JSON file, written through ``atomic_path``; one that cannot be read or describes
another file is a miss (and is replaced).  The cache is optional: a folder that cannot be
written is said once (:func:`diffv2m.cache.warn_cache_unusable`) and the probe answered all
the same.  A file that fails to probe is never cached, so its one-line error comes every time.
:func:`lookup` only reads and :func:`keep` only writes, for a job that must not create the
cache before its outputs are known to be writable (``diffv2m generate``).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from diffv2m import media

#: bump when ``media.probe`` answers differently for the same file
PROBE_VERSION = 1
_FRACTIONS = ("frame_rate", "sample_aspect_ratio")


def identity(path: Path) -> dict[str, Any]:
    return {**media.file_identity(path), "version": PROBE_VERSION}


def entry_path(cache_dir: str | os.PathLike, ident: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / "probe" / f"{key}.json"


def to_json(info: media.MediaInfo) -> dict[str, Any]:
    d = asdict(info)
    d["path"] = str(info.path)
    for name in _FRACTIONS:
        value = getattr(info, name)
        d[name] = None if value is None else [value.numerator, value.denominator]
    return d


def from_json(d: dict[str, Any]) -> media.MediaInfo:
    d = dict(d)
    d["path"] = Path(d["path"])
    for name in _FRACTIONS:
        if d.get(name) is not None:
            d[name] = Fraction(*d[name])
    d["audio_streams"] = [media.AudioStreamInfo(**a) for a in d.get("audio_streams", [])]
    known = {f.name for f in fields(media.MediaInfo)}
    if set(d) != known:
        raise ValueError(f"fields {sorted(set(d) ^ known)}")
    return media.MediaInfo(**d)


def lookup(path: str | os.PathLike, cache_dir: str | os.PathLike | None
           ) -> media.MediaInfo | None:
    """The cached probe of this very file, or ``None`` (no cache, no entry, a changed file, a
    damaged or foreign entry).  Reads only: the cache folder is not created."""
    path = Path(path)
    if cache_dir is None or not path.is_file():
        return None
    ident = identity(path)
    try:
        blob = json.loads(entry_path(cache_dir, ident).read_text(encoding="utf-8"))
        if blob.get("identity") != ident:
            return None
        info = from_json(blob["info"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    info.path = path                     # as the caller named it (the probe's own answer)
    return info


def keep(path: str | os.PathLike, info: media.MediaInfo, cache_dir: str | os.PathLike) -> None:
    """Store ``info`` (``media.probe(path)``'s answer) for ``path``; a cache that cannot be
    written is said once and skipped."""
    from diffv2m.atomic import atomic_path
    ident = identity(Path(path))
    entry = entry_path(cache_dir, ident)
    try:
        with atomic_path(entry) as tmp:              # (makes the folder)
            tmp.write_text(json.dumps({"identity": ident, "info": to_json(info)}),
                           encoding="utf-8")
    except OSError as exc:
        from diffv2m.cache import warn_cache_unusable
        warn_cache_unusable(Path(cache_dir), exc)


def probe(path: str | os.PathLike, cache_dir: str | os.PathLike | None) -> media.MediaInfo:
    """``media.probe(path)``, from the cache when it holds this very file's probe (a miss is
    probed and kept)."""
    hit = lookup(path, cache_dir)
    if hit is not None:
        return hit
    info = media.probe(Path(path))
    if cache_dir is not None:
        keep(path, info, cache_dir)
    return info
