"""The main job, backend-agnostic and torch-free: a video (range) in, a WAV take out.

``generate_file`` is what ``diffv2m generate`` runs, with either the torch backend
(:mod:`diffv2m.pipeline`) or the ONNX Runtime one (:mod:`diffv2m.export.runtime`).
Features are cached by content, so a new seed on the same video only samples and decodes.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import synthesis
from .errors import UserError
from .synthesis import Backend, Conditions, Progress, Settings, Take


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    root = os.environ.get("DIFFV2M_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "diffv2m")
    return Path(root)


_cache_warned: list[str] = []


def warn_cache_unusable(folder: str | os.PathLike, exc: OSError) -> None:
    """Say once per process, on one line, that the (optional) cache is not used and why."""
    import sys
    from .output_transaction import os_error_cause
    if _cache_warned:
        return
    _cache_warned.append(str(folder))
    print(f"diffv2m: warning: cache {folder}: {os_error_cause(exc)}; continuing without the "
          "cache", file=sys.stderr, flush=True)


def usable_cache_dir(folder: str | os.PathLike | None = None) -> Path | None:
    """``folder`` (default: :func:`default_cache_dir`) when a file can be created in it, else
    ``None`` after one warning line: the cache is optional, a read-only or full cache folder
    never stops a job."""
    import tempfile
    folder = Path(folder) if folder is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-") as fh:
            fh.write(b"x")
            fh.flush()
    except OSError as exc:
        warn_cache_unusable(folder, exc)
        return None
    return folder


def semantic_normalisation(backend: str = "cnn") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` the semantic encoder of ``backend`` expects on [0, 1] pixels."""
    from .features.semantic import CLIP_MEAN, CLIP_STD
    if backend == "open_clip":
        return CLIP_MEAN, CLIP_STD
    return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def semantic_pixels(frames: np.ndarray, image_size: int, backend: str = "cnn") -> np.ndarray:
    """Frames ``[T,S,S,3]`` uint8 -> network input ``[T,3,S,S]`` float32 (both backends)."""
    from .features.semantic import preprocess
    return preprocess(frames, image_size, *semantic_normalisation(backend))


def video_conditions(backend: Backend, source: Any, *, cls: int = 1,
                     cache_dir: str | os.PathLike | None = None,
                     progress: Progress | None = None) -> Conditions:
    """Features of a FrameSource (cached by content) -> model conditions for ``backend``."""
    from .features import video
    kw = {"image_size": backend.config.semantic.image_size}
    if cache_dir is not None:
        feats = video.features_for(source, cache_dir, progress=progress, **kw)
    else:
        feats = video.compute_video_features(source, progress=progress, **kw)
    return synthesis.conditions_from_features(backend, feats, cls=cls, progress=progress)


def write_take(take: Take, out: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write a take as WAV/FLAC (temp file + rename) with its settings in the metadata."""
    from . import media
    out = Path(out)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise UserError(f"{out}: output must end in .wav or .flac")
    meta = take.metadata()
    meta.update(extra or {})
    media.write_audio(out, take.audio, take.sample_rate, metadata=meta)
    return out


def generate_file(backend: Backend, video_path: str | os.PathLike, out: str | os.PathLike, *,
                  settings: Settings, start: float = 0.0, end: float | None = None,
                  mux: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                  model_id: str = "", progress: Progress | None = None,
                  source: Any = None, midi: str | os.PathLike | None = None,
                  stems: dict[str, str | os.PathLike] | None = None,
                  soundfont: str | None = None) -> Take:
    """Video (range) -> music file (and optionally a preview MP4 with the music muxed in).

    ``source``: the already-probed ``media.FileFrameSource`` of that range, if the caller
    has one (the CLI checks the input first), so the file is not probed twice.
    Score-family models also write ``midi`` (a Standard MIDI File) and ``stems`` (one WAV
    per track: ``{track: path}``, see :func:`diffv2m.score.files.stem_paths`).
    """
    from . import media
    video_path = Path(video_path)
    if (midi is not None or stems) and backend.config.latent_family != "score":
        raise UserError(f"{midi or next(iter(stems.values()))}: MIDI and stems come from a "
                        "score-family model (--model score)")
    if source is None:
        source = media.FileFrameSource(video_path, start=start, end=end)
    if source.duration <= 0:
        raise UserError(f"{video_path}: the selected range is empty")
    conditions = video_conditions(backend, source, cls=settings.cls, cache_dir=cache_dir,
                                  progress=progress)
    take = synthesis.synthesise(backend, conditions, settings, progress=progress,
                                soundfont=soundfont)
    extra = {"video": str(video_path), "start": start, "end": end, "model": model_id}
    stem_audio = None
    if stems is not None:                        # rendered before anything is written
        from .score.take import render_track_stems
        stem_audio = render_track_stems(take.score, take.sample_rate, soundfont)
    write_take(take, out, extra)
    if midi is not None:
        from .score.files import write_midi_file
        from .score.take import midi_file_bytes
        write_midi_file(midi, midi_file_bytes(take.score))
    if stem_audio is not None:
        from .score.files import write_stems
        write_stems(stems, stem_audio, take.sample_rate, {**take.metadata(), **extra})
    if mux:
        media.mux(video_path, out, mux, start=start, end=end, progress=progress)
    return take
