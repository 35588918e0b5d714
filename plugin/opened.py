"""What a scoring session opened: a timeline file, or a plain video as a one-clip timeline.

Both give the session the same things, so the session, the ``score`` command and the panel
have one path: an OTIO ``timeline`` at a ``rate``, a selection that is always an
``otio.opentime.TimeRange`` in that rate (:meth:`select`), and, only where features are
computed, the selection in seconds and as a frame source (:meth:`frame_source`).

:class:`OpenedVideo` keeps its one-clip timeline in memory: nothing is written next to the
video unless the user exports a timeline.  Its selections are checked against the file (its
duration need not be whole frames: a selection reaching the file's end ends there exactly),
and its picture is read from the file itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import opentimelineio as otio

from diffv2m.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".mpg", ".mpeg"}

#: A selection with more than this share of black or missing picture is reported.
MOSTLY_BLACK = 0.5

#: Seconds within which a selection's end counts as the video file's end.
FILE_END_TOLERANCE = 1e-9

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange


def open_media(path: Path, *, rate: float | None = None, media_root: Path | None = None):
    """:class:`OpenedVideo` for a plain video file (by suffix), else :class:`OpenedTimeline`."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return OpenedVideo(path)
    return OpenedTimeline(path, rate=rate, media_root=media_root)


class OpenedTimeline:
    """A timeline file any installed OTIO adapter reads."""

    kind = "timeline"

    def __init__(self, path: Path, *, rate: float | None = None,
                 media_root: Path | None = None):
        from diffv2m.plugin.timeline import load_timeline, timeline_rate
        self.path, self.media_root = path, media_root
        self.timeline = load_timeline(path, rate=rate, media_root=media_root)
        if not any(t.find_clips() for t in self.timeline.video_tracks()):
            raise UserError(f"{path}: the timeline has no video clips (only audio or "
                            "empty tracks): there is no picture to score")
        self.rate = timeline_rate(self.timeline)
        self.input_path: Path | None = path      # what an exported timeline is written beside

    def initial_selection(self) -> TR | None:
        return None                               # the caller selects (it shows the errors)

    def select(self, **kw: Any) -> TR:
        from diffv2m.plugin.timeline import select
        return select(self.timeline, **{"name": str(self.path), **kw})

    def select_seconds(self, start: float, end: float) -> TR:
        r = self.rate
        return self.select(range=(RT(round(start * r), r), RT(round(end * r), r)))

    def seconds(self, selection: TR) -> tuple[float, float]:
        start = selection.start_time.to_seconds()
        return start, start + selection.duration.to_seconds()

    def frame_source(self, selection: TR) -> tuple[Any, list[str]]:
        """The picture under ``selection`` and what it lacks (``selection_warnings``)."""
        from diffv2m.plugin.timeline import resolve_segments
        from diffv2m.plugin.timeline_source import TimelineFrameSource
        segments = resolve_segments(self.timeline, selection, timeline_path=self.path,
                                    media_root=self.media_root)
        return TimelineFrameSource(segments), selection_warnings(segments)

    def picture_file(self, selection: TR) -> None:
        return None                               # composited: rendered as a proxy

    def media_files(self) -> list[Path]:
        """Every existing media file the timeline references (all tracks, every reference of
        every clip): inputs no output of a job may overwrite."""
        from diffv2m.plugin.timeline import _Resolver
        resolver = _Resolver(self.timeline, self.path, self.media_root, self.rate)
        found = []
        for clip in self.timeline.find_clips():
            for ref in clip.media_references().values():
                if not isinstance(ref, otio.schema.ExternalReference):
                    continue
                try:
                    found.append(resolver.media_path(clip, ref))
                except UserError:
                    pass                            # unresolvable: nothing there to overwrite
        return found

    def export_range(self, selection: TR) -> TR:
        return selection

    def preview(self, source: Any, selection: TR, audio: Path, out_mp4: Path) -> None:
        from diffv2m.plugin.preview import render_preview
        render_preview(source, audio, out_mp4, fps=self.rate)


class OpenedVideo:
    """A plain video file, opened as a one-clip timeline (:func:`video_as_timeline`)."""

    kind = "video"

    def __init__(self, path: Path):
        from diffv2m import media
        self.path = path
        self.info = media.probe(path)
        self.timeline = video_as_timeline(path, self.info)
        self.rate = float(self.info.fps or 24.0)      # the one-clip timeline's own rate
        self.input_path: Path | None = None     # an exported timeline is not "beside" a video

    def _range(self, start: RT, end_seconds: float) -> TR:
        """``start`` to ``end_seconds`` (already within the file), in frames at the rate."""
        r = self.rate
        end = RT(end_seconds * r, r)
        return TR(start, end - start)

    def initial_selection(self) -> TR:
        """The whole file."""
        return self.select_seconds(0.0, self.info.duration)

    def select(self, **kw: Any) -> TR:
        """``range=(in, out)`` (timecode, frames or seconds as :func:`parse_time` reads them,
        or RationalTimes), checked against the file: the end may overshoot it by a frame and
        is then the file's end.  None: the whole file.  Markers and clips are looked up in the
        one-clip timeline."""
        from diffv2m import media
        from diffv2m.plugin.timeline import parse_time, select
        rng = kw.get("range")
        if rng is None:
            if any(kw.get(k) is not None for k in ("marker", "clips")):
                return select(self.timeline, **{"name": str(self.path), **kw})
            return self.initial_selection()
        if len(rng) != 2:
            raise UserError(f"{self.path}: a range needs an in and an out point")
        a, b = (t if isinstance(t, RT) and t.rate == self.rate else parse_time(t, self.rate)
                for t in rng)                     # the strip's frames are taken as they are
        fps = self.info.fps or 0.0
        start, end = media.check_range(self.path, self.info.duration, a.to_seconds(),
                                       b.to_seconds(), slack=1.0 / fps if fps else 0.0)
        return self._range(a, end) if end < b.to_seconds() else TR(a, b - a)

    def select_seconds(self, start: float, end: float) -> TR:
        """Seconds as given (not rounded to frames); the end is at most the file's end."""
        if not (0 <= start < end):
            raise UserError(f"{self.path}: empty selection {start:.3f}-{end:.3f} s")
        if start >= self.info.duration:
            raise UserError(f"{self.path}: selection starts past the end "
                            f"({start:.3f} s > {self.info.duration:.3f} s)")
        r = self.rate
        return self._range(RT(start * r, r), min(end, self.info.duration))

    def seconds(self, selection: TR) -> tuple[float, float]:
        """Where the features are computed: frames -> seconds; an end at the file's end (it
        need not be a whole frame) is the file's duration exactly."""
        start = selection.start_time.to_seconds()
        end = selection.end_time_exclusive().to_seconds()
        d = self.info.duration
        return start, (d if end >= d - FILE_END_TOLERANCE else end)

    def frame_source(self, selection: TR) -> tuple[Any, list[str]]:
        from diffv2m import media
        start, end = self.seconds(selection)
        return media.FileFrameSource(self.path, start=start, end=end), []

    def picture_file(self, selection: TR) -> tuple[Path, float, float]:
        """The file, start and duration (seconds) of the selection's picture."""
        start, end = self.seconds(selection)
        return self.path, start, end - start

    def media_files(self) -> list[Path]:
        return [self.path]

    def export_range(self, selection: TR) -> TR:
        """The selection in whole frames of the one-clip timeline (which holds whole frames)."""
        start, end = self.seconds(selection)
        r = self.rate
        return TR(RT(round(start * r), r), RT(round((end - start) * r), r))

    def preview(self, source: Any, selection: TR, audio: Path, out_mp4: Path) -> None:
        from diffv2m import media
        start, end = self.seconds(selection)
        media.mux(self.path, audio, out_mp4, start=start, end=end)


def selection_warnings(segments) -> list[str]:
    """Warnings about a resolved selection's picture (see ``ScoringSession.warnings``)."""
    out = []
    frac = segments.black_fraction() if hasattr(segments, "black_fraction") else 0.0
    if frac > MOSTLY_BLACK:
        out.append(f"{frac:.0%} of the selection has no picture (gaps, disabled clips or black "
                   "generators): the music follows a black screen there")
    out += list(getattr(segments, "notes", []))
    return out


def video_as_timeline(path: Path, info: Any):
    """A one-clip timeline over a plain video, so a video's selection and takes work like a
    timeline's."""
    r = float(info.fps or 24.0)
    dur = RT(round(info.duration * r), r)
    ref = otio.schema.ExternalReference(target_url=path.resolve().as_uri(),
                                        available_range=TR(RT(0, r), dur))
    clip = otio.schema.Clip(name=path.stem, media_reference=ref, source_range=TR(RT(0, r), dur))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[clip])
    tl = otio.schema.Timeline(name=path.stem, tracks=[track])
    tl.global_start_time = RT(0, r)
    return tl

