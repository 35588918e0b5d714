"""Every clip's training features, in the feature cache (``diffv2m features extract`` and the
trainers use this; the command itself is :mod:`diffv2m.data.features_cli`).

For each clip: the video features (:func:`diffv2m.features.video.compute_video_features`)
and the ground-truth low-resolution ODF of its music (:func:`diffv2m.features.rhythm.odf_lowres`),
one entry of the feature cache (:mod:`diffv2m.features.feature_cache`), the ODF an extra
array ``odf`` of it.  The key hashes the clip's video and audio bytes and the extraction
parameters, so re-running is a no-op and edited clips are redone.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..cache import file_sha256
from ..errors import UserError
from ..features import feature_cache
from ..features.video import VideoFeatures
from .manifest import read_manifest

ODF = "odf"


def clip_entry(clip: dict, cache_dir: Path, *, image_size: int, sample_rate: int) -> Path:
    """Where a clip's entry lies: keyed by its video's bytes, and by its audio's bytes and
    rate for the ODF."""
    return feature_cache.entry_path(
        cache_dir, f"video-sha256:{file_sha256(clip['video'])}", image_size=int(image_size),
        analysis_fps=None, odf={"audio_sha256": file_sha256(clip["audio"]),
                                "sample_rate": int(sample_rate)})


def clip_features(clip: dict, cache_dir: Path, *, image_size: int, sample_rate: int
                  ) -> tuple[Path, VideoFeatures, np.ndarray]:
    """A clip's entry, its video features and its music's ODF (float32 ``[T]``), computed
    and written unless already cached."""
    path = clip_entry(clip, cache_dir, image_size=image_size, sample_rate=sample_rate)
    hit = feature_cache.read_entry(path, image_size=image_size, extra=(ODF,))
    if hit is not None:
        return path, hit[0], hit[1][ODF]
    from .. import media
    from ..features import rhythm, video
    feats = video.compute_video_features(media.FileFrameSource(clip["video"]),
                                         image_size=image_size)
    audio = media.read_audio(clip["audio"], sample_rate, mono=True)[0]
    odf = rhythm.odf_lowres(audio, sample_rate, seconds=feats.seconds).astype(np.float32)
    feature_cache.write_entry(path, feats, {ODF: odf})
    return path, feats, odf


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
                paths.append(clip_features(clip, cache_dir, image_size=image_size,
                                           sample_rate=sample_rate)[0])
            report("features", len(clips), len(clips))
        index = {c["id"]: p.name for c, p in zip(clips, paths)}
        with atomic_path(cache_dir / "index.json") as tmp:
            tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
    except BaseException:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)      # only what this run made
        raise
    return paths
