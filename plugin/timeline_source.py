"""A FrameSource over resolved timeline segments (torch-free).

Same protocol as ``diffv2m.media.FileFrameSource``: ``.duration`` (seconds),
``.frames(fps, size)`` yielding ``(t, frame)`` with ``t`` in seconds from the selection's
start and ``frame`` uint8 ``[H, W, 3]``, and ``.cache_key()``.

Output frame ``k`` shows time ``t_k = k / fps`` of the selection (``t_k < duration``). Inside a
segment starting at ``s`` the media time shown is
``file_start + speed * (t_k - s)`` (speed 0 = the same frame held), and it is decoded with
``diffv2m.media.iter_frames`` over just that range (the frame showing at that time). Black
segments give black frames, generator segments their colour (``Segment.colour``). ``fps=None`` uses the timeline's rate.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from diffv2m.errors import UserError

from .timeline import Segment

_EPS = 1e-6


def _iter_frames(path, *, fps, start, end, size):
    """``diffv2m.media.iter_frames`` (looked up at call time, so it can be replaced in tests)."""
    from diffv2m import media
    return media.iter_frames(path, fps=fps, start=start, end=end, size=size)


class TimelineFrameSource:
    """Frames of a timeline selection, decoded segment by segment."""

    def __init__(self, segments: Sequence[Segment]):
        if not segments:
            raise UserError("timeline selection: nothing to decode (no segments)")
        self.segments = list(segments)
        self.origin = self.segments[0].timeline_start
        self.rate = float(self.origin.rate)

    @property
    def duration(self) -> float:
        return (self.segments[-1].end_time - self.origin).to_seconds()

    def _rel(self, seg: Segment) -> tuple[float, float]:
        s = (seg.timeline_start - self.origin).to_seconds()
        return s, s + seg.duration.to_seconds()

    def _size(self, size) -> tuple[int, int]:
        if size is not None:
            return int(size[0]), int(size[1])
        for seg in self.segments:
            if seg.media_path is not None:
                for _, frame in _iter_frames(seg.media_path, fps=None,
                                             start=max(seg.source_start_seconds, 0.0),
                                             end=None, size=None):
                    return frame.shape[1], frame.shape[0]
                raise UserError(f"{seg.media_path}: no video frames to decode")
        raise UserError("timeline selection: only black (no media) and no frame size given")

    def frames(self, fps: float | None = None, size: tuple[int, int] | None = None
               ) -> Iterator[tuple[float, np.ndarray]]:
        fps = float(fps) if fps else self.rate
        w, h = self._size(size)
        total = self.duration
        n_total = max(0, math.ceil(total * fps - _EPS))
        black = np.zeros((h, w, 3), np.uint8)
        k = 0
        for seg in self.segments:
            s, e = self._rel(seg)
            k_end = min(n_total, max(0, math.ceil(e * fps - _EPS)))
            if k >= k_end:
                continue
            times = [i / fps for i in range(k, k_end)]
            if seg.media_path is None:
                fill = black if seg.colour is None else np.full((h, w, 3), seg.colour, np.uint8)
                for t in times:
                    yield t, fill.copy()
            else:
                for t, frame in zip(times, self._segment_frames(seg, s, times, fps, (w, h))):
                    yield t, frame
            k = k_end

    def _segment_frames(self, seg: Segment, s: float, times: list[float], fps: float,
                        size: tuple[int, int]) -> Iterator[np.ndarray]:
        n = len(times)
        file_t0 = seg.source_start_seconds + seg.speed * (times[0] - s)
        if file_t0 < -1e-3:
            raise UserError(f"{seg.media_path}: clip {seg.clip_name!r} starts before the "
                            "file's first frame")
        file_t0 = max(file_t0, 0.0)
        if seg.speed == 0:
            frame = next(iter(_iter_frames(seg.media_path, fps=fps, start=file_t0,
                                           end=None, size=size)), None)
            if frame is None:
                raise UserError(f"{seg.media_path}: no frame at {file_t0:.3f}s for clip "
                                f"{seg.clip_name!r}")
            for _ in range(n):
                yield frame[1].copy()
            return
        step_fps = fps / seg.speed
        end = file_t0 + n / step_fps
        last = None
        got = 0
        for _, frame in itertools.islice(
                _iter_frames(seg.media_path, fps=step_fps, start=file_t0, end=end, size=size), n):
            last = frame
            got += 1
            yield frame
        if got < n:
            if last is None:
                raise UserError(f"{seg.media_path}: clip {seg.clip_name!r} uses "
                                f"{file_t0:.3f}s-{end:.3f}s, past the end of the file")
            for _ in range(n - got):  # the file ends early: hold its last frame
                yield last.copy()

    def cache_key(self) -> str:
        """Content key: the segments plus each media file's size and modification time."""
        rows = []
        for seg in self.segments:
            row = [(seg.timeline_start - self.origin).to_seconds(), seg.duration.to_seconds(),
                   self.rate]
            if seg.colour is not None:
                row.append(list(seg.colour))
            if seg.media_path is not None:
                p = Path(seg.media_path)
                try:
                    st = p.stat()
                except OSError:
                    raise UserError(f"{p}: media file disappeared") from None
                row += [str(p.resolve()), st.st_size, st.st_mtime_ns,
                        round(seg.source_start_seconds, 9), seg.speed]
            rows.append(row)
        blob = json.dumps(["timeline-v1", rows], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()
