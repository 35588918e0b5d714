"""``diffv2m features extract MANIFEST``: precompute every clip's training features.

For each clip: the video features (:func:`diffv2m.features.video.compute_video_features`)
and the ground-truth low-resolution ODF of its music (:func:`diffv2m.features.rhythm.odf_lowres`),
saved together as ``<cache>/<content-hash>.npz``.  The key hashes the clip's video and audio
bytes and the extraction parameters, so re-running is a no-op and edited clips are redone.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError

FEATURES_VERSION = 2     # 2: + the frame-level motion curve (the DiT's cue track)


def read_manifest(path: Path) -> list[dict]:
    """Clips of a manifest (JSON lines), with media paths made absolute.

    Lenient on purpose (a user's own data needs only ``id``, ``video``, ``audio``, ``split``);
    the corpus builder's strict reader is :func:`diffv2m.data.manifest.read_manifest`.
    """
    from .manifest import json_lines
    clips = []
    for where, clip in json_lines(path):
        for key in ("video", "audio"):
            if key not in clip:
                raise UserError(f"{where}: clip has no {key!r}")
            clip[key] = str((path.parent / clip[key]).resolve())
            if not Path(clip[key]).is_file():
                what = "no such file" if not Path(clip[key]).exists() else "not a file"
                raise UserError(f"{where}: clip {clip.get('id', '?')!r}: {key} {clip[key]}: {what}")
        clips.append(clip)
    if not clips:
        raise UserError(f"{path}: the manifest has no clips")
    return clips


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
    clips = read_manifest(manifest)
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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="diffv2m features",
                                description="Precompute per-clip features for a corpus manifest.")
    sub = p.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("extract", help="extract features for every clip of MANIFEST")
    ex.add_argument("manifest", type=Path)
    ex.add_argument("--cache", type=Path, help="cache folder (default: MANIFEST's folder/features)")
    ex.add_argument("--image-size", type=int, default=64)
    ex.add_argument("--sample-rate", type=int, default=24000)
    ex.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    cache = args.cache or args.manifest.parent / "features"
    paths = extract_manifest(args.manifest, cache, image_size=args.image_size,
                             sample_rate=args.sample_rate, progress=not args.quiet)
    print(f"{len(paths)} clips -> {cache}")
    return 0
