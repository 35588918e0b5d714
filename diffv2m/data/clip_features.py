"""Every clip's training features, cached by content (``diffv2m features extract`` and the
trainers use this; the command itself is :mod:`diffv2m.data.features_cli`).

For each clip: the video features (:func:`diffv2m.features.video.compute_video_features`)
and the ground-truth low-resolution ODF of its music (:func:`diffv2m.features.rhythm.odf_lowres`),
saved together as ``<cache>/<content-hash>.npz``.  The key hashes the clip's video and audio
bytes and the extraction parameters, so re-running is a no-op and edited clips are redone.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from .manifest import read_manifest

FEATURES_VERSION = 2     # 2: + the frame-level motion curve (the DiT's cue track)


def clip_key(clip: dict, image_size: int, sample_rate: int) -> str:
    h = hashlib.sha256(f"v{FEATURES_VERSION}:{image_size}:{sample_rate}".encode())
    for key in ("video", "audio"):
        with open(clip[key], "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:32]


def extract_clip(clip: dict, cache_dir: Path, *, image_size: int, sample_rate: int) -> Path:
    """Features of one clip, computed unless already cached; returns the .npz path."""
    from .. import media
    from ..features import rhythm, video
    out = cache_dir / f"{clip_key(clip, image_size, sample_rate)}.npz"
    if out.exists():
        return out
    feats = video.compute_video_features(media.FileFrameSource(clip["video"]),
                                         image_size=image_size)
    audio = media.read_audio(clip["audio"], sample_rate, mono=True)[0]
    odf = rhythm.odf_lowres(audio, sample_rate, seconds=feats.seconds)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, frames_1fps=feats.frames_1fps, colour=feats.colour.astype(np.float16),
                     scene_cut=feats.scene_cut, motion=feats.motion, cut_times=feats.cut_times,
                     motion_times=feats.motion_curve[0],
                     motion_values=feats.motion_curve[1].astype(np.float32),
                     odf=odf.astype(np.float32), duration=np.float64(feats.duration))
    return out


def extract_manifest(manifest: Path, cache_dir: Path, *, image_size: int = 64,
                     sample_rate: int = 24000, progress: bool = True) -> list[Path]:
    """Every clip's features into ``cache_dir``; all clips are checked first, and a folder
    this run created is removed again when the run fails or is interrupted."""
    import shutil
    from ..progress import cli_progress
    clips = read_manifest(manifest, strict=False)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise UserError(f"{cache_dir}: exists and is not a folder")
    created = [d for d in (cache_dir, *cache_dir.parents) if not d.exists()]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..output_transaction import os_error_cause
        raise UserError(f"{cache_dir}: cannot create the features folder: "
                        f"{os_error_cause(exc)}") from None
    paths = []
    try:
        with cli_progress(disable=not progress) as report:
            for k, clip in enumerate(clips):
                report("features", k, len(clips))
                paths.append(extract_clip(clip, cache_dir, image_size=image_size,
                                          sample_rate=sample_rate))
            report("features", len(clips), len(clips))
        index = {c["id"]: p.name for c, p in zip(clips, paths)}
        with atomic_path(cache_dir / "index.json") as tmp:
            tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
    except BaseException:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)      # only what this run made
        raise
    return paths
