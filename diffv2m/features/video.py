"""All per-second visual conditions of a video selection in one pass, and their cache.

``compute_video_features`` reads a FrameSource once (``source.frames(fps, size)`` yielding
``(t, frame)`` with ``t`` in seconds from the selection start; ``source.duration``) at the
analysis rate (native when ``analysis_fps`` is None), decoded straight to
``image_size x image_size``.  For every frame it keeps only a few numbers (histogram
difference and motion energy, :class:`cuts_motion.FrameAnalyser`); for every second it keeps the
frame nearest that second's centre.  So memory is ``T`` small frames, whatever the length
or resolution of the video.  From those it derives the semantic frames, the 3072-d colour
histograms, the scene cuts and the motion "pseudo beat".

``features_for`` keeps the result in the feature cache (:mod:`.feature_cache`, keyed by the
source's ``cache_key()``, the parameters and ``FEATURES_VERSION``): a second call with the
same input only loads the file.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from ..progress import Progress
from . import colour, cuts_motion
from .image import resize_uint8


class FrameSource(Protocol):
    """What the feature extractor reads: a file range (media.FileFrameSource) or a timeline."""
    duration: float

    def frames(self, fps: float | None, size: tuple[int, int] | None) -> Iterator[tuple[float, np.ndarray]]:
        ...

    def cache_key(self) -> str:
        ...


@dataclass
class VideoFeatures:
    """Per-second visual conditions; row k describes seconds [k, k+1) of the selection."""
    duration: float
    seconds: int                       # T = ceil(duration)
    frames_1fps: np.ndarray            # [T, S, S, 3] uint8, frame nearest each second's centre
    colour: np.ndarray                 # [T, 3072] float32, rows sum to 1
    scene_cut: np.ndarray              # [T] float32, 1 where the second contains a cut
    cut_times: np.ndarray              # [K] float64 seconds (first frame of each new shot)
    motion: np.ndarray                 # [T] float32 pseudo beat in [0, 1]
    motion_curve: tuple[np.ndarray, np.ndarray]   # (times [N] float64, energy [N] float32)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike, extra: Mapping[str, np.ndarray] | None = None) -> Path:
        """Write as compressed .npz (temp file + rename), with the ``extra`` arrays beside
        (the feature cache's version, a training clip's ODF)."""
        path = Path(path)
        arrays = dict(duration=np.float64(self.duration), seconds=np.int64(self.seconds),
                      frames_1fps=self.frames_1fps, colour=self.colour,
                      scene_cut=self.scene_cut, cut_times=self.cut_times, motion=self.motion,
                      motion_times=self.motion_curve[0], motion_values=self.motion_curve[1],
                      meta=np.array(json.dumps(self.meta, sort_keys=True)))
        clash = set(arrays) & set(extra or {})
        if clash:
            raise ValueError(f"extra arrays would replace features: {sorted(clash)}")
        arrays.update(extra or {})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    def check(self, image_size: int | None = None) -> "VideoFeatures":
        """Raise ``ValueError`` unless every array has the shape and type :meth:`save` wrote
        (a cache entry from another version, a damaged or foreign file)."""
        T = self.seconds
        if not (math.isfinite(self.duration) and self.duration > 0 and T >= 1
                and T == max(1, int(math.ceil(self.duration - 1e-9)))):
            raise ValueError(f"duration {self.duration} / seconds {T} disagree")
        f = self.frames_1fps
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[0] != T or f.shape[3] != 3 \
                or f.shape[1] != f.shape[2] or (image_size is not None and f.shape[1] != image_size):
            raise ValueError(f"frames_1fps {f.dtype}{f.shape}")
        if self.colour.dtype.kind != "f" or self.colour.shape != (T, colour.COLOUR_DIM):
            raise ValueError(f"colour {self.colour.dtype}{self.colour.shape}")
        for name in ("scene_cut", "motion"):
            a = getattr(self, name)
            if a.dtype.kind != "f" or a.shape != (T,):
                raise ValueError(f"{name} {a.dtype}{a.shape}")
        times, values = self.motion_curve
        if self.cut_times.dtype.kind != "f" or self.cut_times.ndim != 1 or times.ndim != 1 \
                or times.dtype.kind != "f" or values.dtype.kind != "f" or values.shape != times.shape:
            raise ValueError("cut or motion times")
        for a in (self.colour, self.scene_cut, self.motion, self.cut_times, times, values):
            if not np.all(np.isfinite(a)):
                raise ValueError("non-finite values")
        if not isinstance(self.meta, dict):
            raise ValueError("meta is not a table")
        return self

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VideoFeatures":
        """Read a file written by :meth:`save`; a missing or damaged file is a UserError."""
        return cls.load_with(path, ())[0]

    @classmethod
    def load_with(cls, path: str | os.PathLike, extra: Iterable[str]
                  ) -> tuple["VideoFeatures", dict[str, np.ndarray]]:
        """:meth:`load`, and the ``extra`` arrays saved beside (each one must be there)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = cls(duration=float(z["duration"]), seconds=int(z["seconds"]),
                            frames_1fps=z["frames_1fps"], colour=z["colour"],
                            scene_cut=z["scene_cut"], cut_times=z["cut_times"],
                            motion=z["motion"],
                            motion_curve=(z["motion_times"], z["motion_values"]),
                            meta=json.loads(str(z["meta"])))
                return feats, {name: z[name] for name in extra}
        except FileNotFoundError:
            raise UserError(f"{path}: no such features file") from None
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            raise UserError(f"{path}: not a Diff-V2M features file ({exc})") from None


def _name(source: Any) -> str:
    return str(getattr(source, "path", None) or getattr(source, "name", None) or type(source).__name__)


def _notify(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress("features", done, total)


def _fill_missing(frames: list[np.ndarray | None]) -> list[np.ndarray]:
    """Seconds that got no frame (low analysis rate, gaps) take the nearest earlier/later one."""
    have = [i for i, f in enumerate(frames) if f is not None]
    out = []
    for i, f in enumerate(frames):
        if f is None:
            j = min(have, key=lambda h: (abs(h - i), h))
            f = frames[j]
        out.append(f)
    return out


def compute_video_features(source: FrameSource, *, image_size: int = 64,
                           analysis_fps: float | None = None,
                           progress: Progress | None = None) -> VideoFeatures:
    """Read ``source`` once and compute every per-second visual condition (see module doc)."""
    name = _name(source)
    duration = float(source.duration)
    if not (duration > 0) or not math.isfinite(duration):
        raise UserError(f"{name}: the selection is empty (duration {duration:g} s)")
    if analysis_fps is not None and not analysis_fps > 0:
        raise UserError(f"{name}: analysis fps must be positive, not {analysis_fps}")
    S = int(image_size)
    T = max(1, int(math.ceil(duration - 1e-9)))
    analyser = cuts_motion.FrameAnalyser()
    best: list[np.ndarray | None] = [None] * T
    best_dist = np.full(T, np.inf)
    _notify(progress, 0, T)
    last_k = 0
    for t, frame in source.frames(analysis_fps, (S, S)):
        t = max(0.0, float(t))
        if t >= duration:
            break
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise UserError(f"{name}: frame at {t:.3f} s has shape {frame.shape}, expected HxWx3")
        analyser.push(t, frame)
        k = min(int(t), T - 1)
        centre = 0.5 * (k + min(k + 1.0, duration))
        dist = abs(t - centre)
        if dist < best_dist[k]:
            best_dist[k] = dist
            best[k] = np.array(resize_uint8(frame, S, S), copy=True)  # sources may reuse buffers
        if k > last_k:
            last_k = k
            _notify(progress, k, T)
    if not any(f is not None for f in best):
        raise UserError(f"{name}: no video frames in the selection")
    frames_1fps = np.stack(_fill_missing(best)).astype(np.uint8)
    times, diffs, motion = analyser.times, analyser.differences, analyser.motion
    cut_times = cuts_motion.cuts_from_differences(times, diffs)
    feats = VideoFeatures(
        duration=duration, seconds=T, frames_1fps=frames_1fps,
        colour=colour.colour_features(frames_1fps),
        scene_cut=cuts_motion.cut_indicator(cut_times, T), cut_times=cut_times,
        motion=cuts_motion.pseudo_beat(times, motion, T, cut_times),
        motion_curve=(times, motion),
        meta={"image_size": S, "analysis_fps": analysis_fps,
              "frames_analysed": int(len(times))})
    _notify(progress, T, T)
    return feats


def features_for(source: FrameSource, cache_dir: str | os.PathLike, *, image_size: int = 64,
                 analysis_fps: float | None = None,
                 progress: Progress | None = None) -> VideoFeatures:
    """:func:`compute_video_features` through the feature cache (a hit only loads a file).

    The cache is optional and self-healing: an entry that cannot be read, or holds arrays of
    the wrong shape or type (or is a folder), is discarded and rebuilt; when the entry cannot
    be written (read-only or full disk) the job goes on without it after one warning line.
    """
    from . import feature_cache
    path = feature_cache.entry_path(cache_dir, source.cache_key(), image_size=int(image_size),
                                    analysis_fps=analysis_fps)
    hit = feature_cache.read_entry(path, image_size=int(image_size))
    if hit is not None:
        feats = hit[0]
        _notify(progress, feats.seconds, feats.seconds)
        return feats
    feats = compute_video_features(source, image_size=image_size, analysis_fps=analysis_fps,
                                   progress=progress)
    try:
        feature_cache.write_entry(path, feats)
    except OSError as exc:
        from ..cache import warn_cache_unusable
        warn_cache_unusable(Path(cache_dir), exc)
    return feats
