"""The main job, backend-agnostic and torch-free: a video (range) in, a WAV take out.

``generate_file`` is what ``diffv2m generate`` runs, with either the torch backend
(:mod:`diffv2m.pipeline`) or the ONNX Runtime one (:mod:`diffv2m.runtime.ort`).
Features are cached by content, so a new seed on the same video only samples and decodes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import synthesis
from .errors import UserError
from .synthesis import Backend, Conditions, Progress, Settings, Take


def video_conditions(backend: Backend, source: Any, *, cls: int = 1,
                     cache_dir: str | os.PathLike | None = None,
                     progress: Progress | None = None) -> Conditions:
    """Features of a FrameSource (cached by content) -> model conditions for ``backend``.

    With a cache, the semantic tokens and the predicted ODF are cached too when the backend
    names what they depend on (``backend.conditions_identity``; the ONNX runtime on the CPU
    does): a new seed on the same video then runs neither network."""
    from .features import video
    kw = {"image_size": backend.config.semantic.image_size}
    if cache_dir is None:
        feats = video.compute_video_features(source, progress=progress, **kw)
        return synthesis.conditions_from_features(backend, feats, cls=cls, progress=progress)
    feats = video.features_for(source, cache_dir, progress=progress, **kw)
    identity = getattr(backend, "conditions_identity", None)
    if not identity:
        return synthesis.conditions_from_features(backend, feats, cls=cls, progress=progress)
    from .features import feature_cache
    path = feature_cache.entry_path(cache_dir, source.cache_key(), analysis_fps=None,
                                    conditions=str(identity), cls=int(cls), **kw)
    T = feats.seconds
    hit = feature_cache.read_arrays(path, {"semantic": (T, backend.config.semantic_dim),
                                           "odf": (T,)})
    if hit is not None:
        for stage in ("semantic", "rhythm"):
            if progress is not None:
                progress(stage, 1, 1)
        return synthesis.conditions_of(feats, hit["semantic"], hit["odf"])
    cond = synthesis.conditions_from_features(backend, feats, cls=cls, progress=progress)
    if cond.semantic.shape == (T, backend.config.semantic_dim):
        try:
            feature_cache.write_arrays(path, {"semantic": cond.semantic, "odf": cond.odf})
        except OSError as exc:
            from .cache import warn_cache_unusable
            warn_cache_unusable(Path(cache_dir), exc)
    return cond


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
    per track: ``{track: path}``, see :func:`diffv2m.score.files.stem_paths`), from the
    same render as the mix; the model's family (:mod:`diffv2m.families`) writes them.
    """
    from . import media
    from .families import check_outputs, family_of
    video_path = Path(video_path)
    family = family_of(backend.config)
    check_outputs(family, midi=midi, stems=stems)
    if source is None:
        source = media.FileFrameSource(video_path, start=start, end=end)
    if source.duration <= 0:
        raise UserError(f"{video_path}: the selected range is empty")
    conditions = video_conditions(backend, source, cls=settings.cls, cache_dir=cache_dir,
                                  progress=progress)
    take = synthesis.synthesise(backend, conditions, settings, progress=progress,
                                soundfont=soundfont, stems=stems is not None)
    extra = {"video": str(video_path), "start": start, "end": end, "model": model_id}
    write_take(take, out, extra)
    family.write_outputs(take, midi=midi, stems=stems, metadata={**take.metadata(), **extra})
    if mux:
        media.mux(video_path, out, mux, start=start, end=end, progress=progress)
    return take
