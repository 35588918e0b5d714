"""The feature cache: generation and training keep their video features here, one way.

An entry is ``<cache_dir>/<key>.npz``: the arrays of a
:class:`~diffv2m.features.video.VideoFeatures` (written by its ``save``), the
``features_version`` they were made under, and any extra arrays the caller keys in (training
adds its clip's music ODF, ``odf``).  The key (:func:`entry_path`) is the sha256 of the
content the features come from (a frame source's ``cache_key()``, or a training clip's
media hashes), the parameters, and :data:`FEATURES_VERSION`: bump the version when any
feature definition changes, and entries made by older code simply miss.

The cache heals itself: :func:`read_entry` answers a miss for an entry that cannot be read,
holds arrays of the wrong shape or type, was made under another version, or is a folder, and
removes it, so the caller computes the features again and replaces it.

Beside an entry of features, a model's own conditions computed from them (the semantic tokens
and the predicted ODF of :func:`diffv2m.synthesis.conditions_from_features`) are kept in a
small entry of arrays (:func:`read_arrays` / :func:`write_arrays`, the same healing), keyed
like the features plus what the arrays depend on (the backend's ``conditions_identity``, the
style class), so a new seed on the same video runs neither the semantic encoder nor the
rhythm predictor.  :data:`FEATURES_VERSION` covers those conditions too: bump it when the way
they are computed from the features changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import UserError
from .video import VideoFeatures

# 3: one cache for generation (its entries were version 1) and training (version 2: + the
# frame-level motion curve, the DiT's cue track).  Bump when any feature definition changes.
FEATURES_VERSION = 3
VERSION_ARRAY = "features_version"


def entry_path(cache_dir: str | os.PathLike, source: str, **params: Any) -> Path:
    """Where the entry for the features of ``source`` (a content identity) made with
    ``params`` (JSON-able: image size, analysis rate, what the extra arrays were made of)
    lies."""
    blob = json.dumps({"source": str(source), "version": FEATURES_VERSION, "params": params},
                      sort_keys=True, default=str)
    return Path(cache_dir) / f"{hashlib.sha256(blob.encode()).hexdigest()}.npz"


def read_entry(path: Path, *, image_size: int | None = None, extra: Iterable[str] = ()
               ) -> tuple[VideoFeatures, dict[str, np.ndarray]] | None:
    """The features and the ``extra`` arrays of the entry at ``path``, or ``None`` (a miss)
    when there is none or it is damaged, foreign or of another version (then removed)."""
    if not os.path.lexists(path):
        return None
    names = (VERSION_ARRAY, *extra)
    try:
        feats, arrays = VideoFeatures.load_with(path, names)
        if int(arrays.pop(VERSION_ARRAY)) == FEATURES_VERSION:
            return feats.check(image_size), arrays
    except (UserError, ValueError, TypeError, AttributeError):
        pass
    _discard(path)          # damaged, foreign or stale: the caller recomputes and replaces it
    return None


def write_entry(path: Path, feats: VideoFeatures,
                extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write an entry (temp file + rename); an ``OSError`` is the caller's to judge."""
    return feats.save(path, extra={VERSION_ARRAY: np.int64(FEATURES_VERSION), **(extra or {})})


def read_arrays(path: Path, shapes: Mapping[str, tuple[int, ...]]
                ) -> dict[str, np.ndarray] | None:
    """The float32 arrays ``shapes`` names from the array entry at ``path`` (each of exactly
    that shape, all finite), or ``None`` (a miss) when there is none or it is damaged, foreign,
    of another version or of other shapes (then removed)."""
    if not os.path.lexists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z[VERSION_ARRAY]) == FEATURES_VERSION:
                arrays = {name: z[name] for name in shapes}
                if all(a.dtype == np.float32 and a.shape == tuple(shapes[name])
                       and np.all(np.isfinite(a)) for name, a in arrays.items()):
                    return arrays
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        pass
    _discard(path)
    return None


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write an array entry (temp file + rename, uncompressed: it is small); an ``OSError``
    is the caller's to judge."""
    from ..atomic import atomic_path
    path = Path(path)
    if VERSION_ARRAY in arrays:
        raise ValueError(f"{VERSION_ARRAY!r} is the cache's own array")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{VERSION_ARRAY: np.int64(FEATURES_VERSION), **arrays})
    return path


def _discard(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass                        # read-only cache: writing the entry says so
