"""The timeline strip: tracks and clips to scale, thumbnails, markers, playhead, IN/OUT.

* :class:`StripModel` is a plain description of what is drawn, built by
  :func:`model_for_session` from a :class:`~diffv2m.plugin.session.ScoringSession` (a timeline:
  its tracks, clips, gaps and markers; a plain video: one track, one clip).  Positions are
  whole frames at the timeline's rate, 0 = the timeline's first frame.
* :class:`ThumbnailLoader` decodes one small frame per clip with :mod:`diffv2m.media` on a
  background thread, and caches it.
* :class:`TimelineStrip` paints the model.  Click a clip to select its range (Shift-click adds
  clips), drag across the tracks to select a range, drag the IN/OUT handles, click the ruler to
  move the playhead, click a marker's flag to select the marker.  It only *reports* edits
  (``selectionEdited``, ``markerClicked``); the panel applies them to the session and sets
  back the session's resolved selection with :meth:`TimelineStrip.set_selection`.
* :class:`SelectionBar` shows IN / OUT / duration / playhead as timecode in the timeline's
  rate (23.976, 29.97 drop-frame with ';'), and lets the editor type IN and OUT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio
from PySide6.QtCore import QObject, QPointF, QRectF, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QWidget

RationalTime = otio.opentime.RationalTime


# ------------------------------------------------------------------------------------ model

@dataclass
class StripClip:
    """One item of a track: ``start``..``end`` (exclusive) in timeline frames."""
    name: str
    start: int
    end: int
    kind: str = "clip"                  # "clip" | "gap" | "nested"
    media_path: Path | None = None      # for the thumbnail
    media_seconds: float | None = None  # time in the file shown by the thumbnail


@dataclass
class StripTrack:
    name: str
    kind: str                           # "video" | "audio"
    clips: list[StripClip] = field(default_factory=list)
    enabled: bool = True


@dataclass
class StripMarker:
    name: str
    start: int
    duration: int = 0


@dataclass
class StripModel:
    """What the strip draws; frames at ``rate``; ``origin`` = first frame's record frame."""
    name: str
    rate: float
    duration: int
    origin: int = 0
    tracks: list[StripTrack] = field(default_factory=list)
    markers: list[StripMarker] = field(default_factory=list)

    def timecode(self, frame: int) -> str:
        """Record timecode of a timeline frame (drop-frame ';' at 29.97 / 59.94)."""
        try:
            return otio.opentime.to_timecode(RationalTime(int(frame) + self.origin, self.rate),
                                             self.rate)
        except Exception:  # non-SMPTE rates: seconds instead
            return f"{(frame + self.origin) / self.rate:.3f}s"

    def duration_text(self, frames: int) -> str:
        """A duration as timecode from zero (never drop-frame confusion: plain frames count)."""
        try:
            return otio.opentime.to_timecode(RationalTime(int(frames), self.rate), self.rate)
        except Exception:
            return f"{frames / self.rate:.3f}s"

    def clips_at(self, frame: int) -> list[tuple[int, StripClip]]:
        return [(i, c) for i, t in enumerate(self.tracks) for c in t.clips
                if c.kind != "gap" and c.start <= frame < c.end]


def _frames(t: RationalTime, rate: float) -> int:
    return int(round(t.rescaled_to(rate).value))


def model_for_session(session: Any) -> StripModel:
    """The strip model of a session's timeline, or one track/one clip for a plain video."""
    if session.is_video:
        rate = float(session.rate)
        n = max(1, int(round(session.info.duration * rate)))
        clip = StripClip(session.path.name, 0, n, media_path=session.path,
                         media_seconds=min(session.info.duration * 0.5, 1.0))
        return StripModel(session.path.name, rate, n, 0, [StripTrack("V1", "video", [clip])])
    return model_for_timeline(session.timeline, session.rate, session.path,
                              getattr(session, "media_root", None))


def model_for_timeline(timeline, rate: float, path: Path | None = None,
                       media_root: Path | None = None) -> StripModel:
    """Tracks (video first, bottom to top as numbered; then audio), clips, gaps, markers."""
    from diffv2m.plugin.timeline import list_markers
    origin = 0 if timeline.global_start_time is None else _frames(timeline.global_start_time, rate)
    total = _frames(timeline.tracks.duration(), rate)
    tracks = []
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            continue
        kind = "audio" if track.kind == otio.schema.TrackKind.Audio else "video"
        offset = _frames(track.trimmed_range().start_time, rate)
        st = StripTrack(track.name or ("A" if kind == "audio" else "V"), kind,
                        enabled=bool(track.enabled))
        ranges = track.range_of_all_children() if len(track) else {}
        for child in track:
            if isinstance(child, otio.schema.Transition):
                continue
            r = ranges[child]
            a = _frames(r.start_time, rate) - offset
            b = _frames(r.end_time_exclusive(), rate) - offset
            if b <= 0 or a >= total:
                continue
            if isinstance(child, otio.schema.Gap):
                st.clips.append(StripClip("", a, b, "gap"))
            elif isinstance(child, otio.schema.Clip):
                mpath, msec = _thumbnail_source(timeline, child, rate, path, media_root) \
                    if kind == "video" else (None, None)
                st.clips.append(StripClip(child.name, a, b, "clip", mpath, msec))
            else:
                st.clips.append(StripClip(child.name or type(child).__name__, a, b, "nested"))
        tracks.append(st)
    videos = [t for t in tracks if t.kind == "video"]
    audios = [t for t in tracks if t.kind == "audio"]
    markers = [StripMarker(n, _frames(r.start_time, rate), _frames(r.duration, rate))
               for n, r in list_markers(timeline)]
    name = path.name if path else (timeline.name or "timeline")
    return StripModel(name, rate, max(total, 1), origin, videos + audios, markers)


def _thumbnail_source(timeline, clip, rate, path, media_root) -> tuple[Path | None, float | None]:
    """The media file of a clip and the file time of its middle frame (None when unknown)."""
    from diffv2m.plugin.timeline import _Resolver   # the bridge's own media lookup (relink included)
    try:
        res = _Resolver(timeline, path, media_root, rate)
        mpath = res.media_path(clip, clip.media_reference)
    except Exception:
        return None, None
    tr = clip.trimmed_range()
    mid = tr.start_time + RationalTime(tr.duration.value / 2, tr.duration.rate)
    ar = clip.media_reference.available_range
    if ar is not None:
        mid = mid - ar.start_time
    return mpath, max(0.0, mid.to_seconds())


# ------------------------------------------------------------------------------ thumbnails

class _ThumbSignals(QObject):
    ready = Signal(object, object)      # key, np.ndarray [H, W, 3] uint8 (or None)


class _ThumbJob(QRunnable):
    def __init__(self, key, path: Path, seconds: float, height: int, signals: _ThumbSignals):
        super().__init__()
        self.key, self.path, self.seconds, self.height, self.signals = key, path, seconds, height, signals

    def run(self) -> None:
        frame = None
        try:
            from diffv2m import media
            info = media.probe(self.path)
            dw, dh = (info.display_width or info.width or 16), (info.display_height or info.height or 9)
            w = max(2, int(round(self.height * dw / max(dh, 1))) // 2 * 2)
            start = min(self.seconds, max(0.0, info.duration - 0.05))
            for _, img in media.iter_frames(self.path, start=start, size=(w, self.height)):
                frame = np.ascontiguousarray(img)
                break
        except Exception:
            frame = None
        self.signals.ready.emit(self.key, frame)


class ThumbnailLoader(QObject):
    """Decodes one small frame per (file, time) off the UI thread; keeps them cached."""

    updated = Signal()

    def __init__(self, height: int = 36, parent: QObject | None = None):
        super().__init__(parent)
        self.height = height
        self.cache: dict[tuple, QImage | None] = {}
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _ThumbSignals()
        self._signals.ready.connect(self._ready)
        self._jobs: dict[tuple, _ThumbJob] = {}

    def key(self, path: Path, seconds: float) -> tuple:
        return (str(path), round(float(seconds), 2), self.height)

    def get(self, path: Path | None, seconds: float | None) -> QImage | None:
        """The cached thumbnail, or None (and a background decode is queued)."""
        if path is None or seconds is None:
            return None
        k = self.key(path, seconds)
        if k in self.cache:
            return self.cache[k]
        if k not in self._jobs:
            job = _ThumbJob(k, Path(path), float(seconds), self.height, self._signals)
            self._jobs[k] = job
            self.pool.start(job)
        return None

    def pending(self) -> int:
        return len(self._jobs)

    def _ready(self, key, frame) -> None:
        self._jobs.pop(key, None)
        img = None
        if frame is not None:
            h, w = frame.shape[:2]
            img = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.cache[key] = img
        self.updated.emit()

    def shutdown(self, msecs: int = 2000) -> None:
        from shiboken6 import isValid
        if not isValid(self.pool):
            return
        self.pool.clear()
        self.pool.waitForDone(msecs)


# ----------------------------------------------------------------------------------- strip

RULER_H = 22
VIDEO_H = 40
AUDIO_H = 22
HEADER_W = 44
HANDLE_PX = 6

_CLIP_COLOURS = [QColor(70, 110, 170), QColor(90, 140, 110), QColor(150, 110, 70),
                 QColor(120, 90, 150)]


class TimelineStrip(QWidget):
    """Tracks and clips to scale with thumbnails, markers, playhead and IN/OUT handles."""

    selectionEdited = Signal(int, int)   # in, out (exclusive), timeline frames
    markerClicked = Signal(str)
    playheadMoved = Signal(int)

    def __init__(self, parent: QWidget | None = None, thumbnails: ThumbnailLoader | None = None):
        super().__init__(parent)
        self.model: StripModel | None = None
        self.sel_in: int | None = None
        self.sel_out: int | None = None
        self.playhead = 0
        self.thumbnails = thumbnails or ThumbnailLoader(parent=self)
        self.thumbnails.updated.connect(self.update)
        self._drag: tuple[str, int] | None = None   # (mode, anchor frame)
        self._press_x = 0.0
        self._picked: list[StripClip] = []
        self.setMouseTracking(True)
        self.setMinimumHeight(RULER_H + VIDEO_H + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Click a clip to select it (Shift adds clips); drag to select a range; "
                        "drag the IN/OUT handles; click the ruler to move the playhead; "
                        "click a marker flag to select the marker.")

    # -- data -------------------------------------------------------------------------------
    def set_model(self, model: StripModel | None) -> None:
        self.model = model
        self.sel_in = self.sel_out = None
        self.playhead = 0
        self._picked = []
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def set_selection(self, sel_in: int | None, sel_out: int | None) -> None:
        self.sel_in, self.sel_out = sel_in, sel_out
        self.update()

    def sizeHint(self) -> QSize:
        h = RULER_H + 8
        if self.model:
            h += sum(VIDEO_H if t.kind == "video" else AUDIO_H for t in self.model.tracks)
        else:
            h += VIDEO_H
        return QSize(640, h)

    # -- geometry ---------------------------------------------------------------------------
    def _scale(self) -> float:
        width = max(1.0, self.width() - HEADER_W - 6)
        return width / max(1, self.model.duration) if self.model else 1.0

    def x_of(self, frame: float) -> float:
        return HEADER_W + frame * self._scale()

    def frame_at(self, x: float) -> int:
        if not self.model:
            return 0
        f = int(round((x - HEADER_W) / self._scale()))
        return max(0, min(self.model.duration, f))

    def track_rects(self) -> list[tuple[int, QRectF]]:
        """(index in model.tracks, rect) — video tracks drawn top track first, then audio."""
        out, y = [], RULER_H + 2
        if not self.model:
            return out
        vids = [i for i, t in enumerate(self.model.tracks) if t.kind == "video"][::-1]
        auds = [i for i, t in enumerate(self.model.tracks) if t.kind == "audio"]
        for i in vids + auds:
            h = VIDEO_H if self.model.tracks[i].kind == "video" else AUDIO_H
            out.append((i, QRectF(0, y, self.width(), h - 2)))
            y += h
        return out

    def clip_rect(self, track_index: int, clip: StripClip) -> QRectF:
        for i, r in self.track_rects():
            if i == track_index:
                return QRectF(self.x_of(clip.start), r.top(),
                              max(1.0, self.x_of(clip.end) - self.x_of(clip.start)), r.height())
        return QRectF()

    def _clip_at(self, pos: QPointF) -> tuple[int, StripClip] | None:
        for i, r in self.track_rects():
            if r.top() <= pos.y() <= r.bottom():
                f = (pos.x() - HEADER_W) / self._scale()
                for c in self.model.tracks[i].clips:
                    if c.kind != "gap" and c.start <= f < c.end:
                        return i, c
        return None

    # -- painting ---------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(34, 36, 40))
        if not self.model:
            p.setPen(QColor(160, 160, 160))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       "Open a timeline or a video (File ▸ Open, or drop it here)")
            p.end()
            return
        m = self.model
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        p.setFont(small)
        self._paint_ruler(p, m)
        for i, rect in self.track_rects():
            self._paint_track(p, i, rect)
        self._paint_selection(p)
        for mk in m.markers:
            x = self.x_of(mk.start)
            p.setPen(QPen(QColor(240, 200, 60), 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(x, RULER_H), QPointF(x, self.height()))
            p.setBrush(QColor(240, 200, 60))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawPolygon(QPolygonF([QPointF(x, RULER_H - 1), QPointF(x - 5, RULER_H - 9),
                                     QPointF(x + 5, RULER_H - 9)]))
            if mk.duration > 0:
                p.fillRect(QRectF(x, RULER_H - 4, self.x_of(mk.start + mk.duration) - x, 3),
                           QColor(240, 200, 60, 160))
        xp = self.x_of(self.playhead)
        p.setPen(QPen(QColor(230, 60, 60), 1.5))
        p.drawLine(QPointF(xp, 0), QPointF(xp, self.height()))
        p.end()

    def _paint_ruler(self, p: QPainter, m: StripModel) -> None:
        p.fillRect(QRectF(0, 0, self.width(), RULER_H), QColor(48, 50, 56))
        seconds = m.duration / m.rate
        px_per_s = (self.width() - HEADER_W - 6) / max(seconds, 1e-6)
        step = next((s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
                     if s * px_per_s >= 80), 1200)
        p.setPen(QColor(170, 170, 170))
        k = 0
        while k * step <= seconds + 1e-9:
            f = int(round(k * step * m.rate))
            x = self.x_of(f)
            p.drawLine(QPointF(x, RULER_H - 6), QPointF(x, RULER_H))
            p.drawText(QPointF(x + 2, 10), m.timecode(f))
            k += 1

    def _paint_track(self, p: QPainter, i: int, rect: QRectF) -> None:
        track = self.model.tracks[i]
        p.fillRect(rect, QColor(42, 44, 50))
        p.setPen(QColor(200, 200, 200) if track.enabled else QColor(110, 110, 110))
        p.drawText(QRectF(3, rect.top(), HEADER_W - 4, rect.height()),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, track.name[:6])
        for n, c in enumerate(track.clips):
            if c.kind == "gap":
                continue
            r = QRectF(self.x_of(c.start), rect.top() + 1,
                       max(1.0, self.x_of(c.end) - self.x_of(c.start)), rect.height() - 2)
            colour = QColor(60, 120, 90) if track.kind == "audio" else _CLIP_COLOURS[n % len(_CLIP_COLOURS)]
            if c in self._picked:
                colour = colour.lighter(140)
            p.fillRect(r, colour)
            img = self.thumbnails.get(c.media_path, c.media_seconds) if track.kind == "video" else None
            if img is not None and not img.isNull() and r.width() > 8:
                th = r.height() - 2
                tw = min(r.width() - 2, img.width() * th / max(1, img.height()))
                p.drawImage(QRectF(r.left() + 1, r.top() + 1, tw, th), img,
                            QRectF(0, 0, img.width() * tw / (img.width() * th / max(1, img.height())),
                                   img.height()))
                text_left = r.left() + tw + 3
            else:
                text_left = r.left() + 3
            p.setPen(QColor(235, 235, 235))
            p.drawText(QRectF(text_left, r.top(), max(0.0, r.right() - text_left - 2), r.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, c.name)
            p.setPen(QColor(20, 20, 20))
            p.drawRect(r)

    def _paint_selection(self, p: QPainter) -> None:
        if self.sel_in is None or self.sel_out is None:
            return
        a, b = self.x_of(self.sel_in), self.x_of(self.sel_out)
        top = RULER_H
        shade = QColor(0, 0, 0, 110)              # outside the selection is dimmed
        p.fillRect(QRectF(HEADER_W, top, max(0.0, a - HEADER_W), self.height() - top), shade)
        p.fillRect(QRectF(b, top, max(0.0, self.width() - b), self.height() - top), shade)
        p.fillRect(QRectF(a, 0, b - a, RULER_H), QColor(90, 160, 255, 90))
        for x, label in ((a, "IN"), (b, "OUT")):
            p.setPen(QPen(QColor(90, 170, 255), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            p.fillRect(QRectF(x - 3, self.height() - 12, 6, 12), QColor(90, 170, 255))

    # -- interaction ------------------------------------------------------------------------
    def _near(self, x: float, frame: int | None) -> bool:
        return frame is not None and abs(x - self.x_of(frame)) <= HANDLE_PX

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if not self.model or e.button() != Qt.MouseButton.LeftButton:
            return
        pos = e.position()
        self._press_x = pos.x()
        if pos.y() < RULER_H:
            for mk in self.model.markers:
                if abs(pos.x() - self.x_of(mk.start)) <= 6 and pos.y() >= RULER_H - 12:
                    self.markerClicked.emit(mk.name)
                    return
            self._drag = ("playhead", 0)
            self._move_playhead(self.frame_at(pos.x()))
            return
        if self._near(pos.x(), self.sel_out):
            self._drag = ("out", self.sel_in or 0)
        elif self._near(pos.x(), self.sel_in):
            self._drag = ("in", self.sel_out or self.model.duration)
        else:
            self._drag = ("press", self.frame_at(pos.x()))

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if not self.model:
            return
        pos = e.position()
        if self._drag is None:
            near = self._near(pos.x(), self.sel_in) or self._near(pos.x(), self.sel_out)
            self.setCursor(Qt.CursorShape.SizeHorCursor if near and pos.y() >= RULER_H
                           else Qt.CursorShape.ArrowCursor)
            return
        mode, anchor = self._drag
        f = self.frame_at(pos.x())
        if mode == "playhead":
            self._move_playhead(f)
        elif mode == "in":
            self.sel_in = min(f, anchor - 1)
        elif mode == "out":
            self.sel_out = max(f, anchor + 1)
        elif mode in ("press", "range") and (mode == "range" or abs(pos.x() - self._press_x) > 4):
            self._drag = ("range", anchor)
            self.sel_in, self.sel_out = min(anchor, f), max(anchor, f)
            self._picked = []
        self.update()

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        if not self.model or self._drag is None:
            return
        mode, _ = self._drag
        self._drag = None
        if mode == "press":
            hit = self._clip_at(e.position())
            if hit is None:
                return
            _, clip = hit
            shift = bool(e.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._picked = (self._picked + [clip]) if shift and clip not in self._picked else [clip]
            self.sel_in = min(c.start for c in self._picked)
            self.sel_out = min(self.model.duration, max(c.end for c in self._picked))
        elif mode == "playhead":
            return
        if self.sel_in is not None and self.sel_out is not None and self.sel_out > self.sel_in:
            self.update()
            self.selectionEdited.emit(int(self.sel_in), int(self.sel_out))

    def _move_playhead(self, f: int) -> None:
        if f != self.playhead:
            self.playhead = f
            self.playheadMoved.emit(f)
            self.update()


class SelectionBar(QWidget):
    """IN / OUT (editable timecode), duration and playhead, in the timeline's rate."""

    rangeTyped = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.in_edit = QLineEdit()
        self.out_edit = QLineEdit()
        for w, tip in ((self.in_edit, "IN"), (self.out_edit, "OUT (exclusive)")):
            w.setPlaceholderText("00:00:00:00")
            w.setMaximumWidth(110)
            w.setToolTip(f"{tip}: timecode HH:MM:SS:FF (';' for drop-frame), frames (240) or "
                         "seconds (10s); press Enter")
            w.returnPressed.connect(self._typed)
        self.duration_label = QLabel("")
        self.playhead_label = QLabel("")
        self.rate_label = QLabel("")
        lay.addWidget(QLabel("IN"))
        lay.addWidget(self.in_edit)
        lay.addWidget(QLabel("OUT"))
        lay.addWidget(self.out_edit)
        lay.addWidget(self.duration_label)
        lay.addStretch(1)
        lay.addWidget(self.playhead_label)
        lay.addWidget(self.rate_label)
        self.model: StripModel | None = None

    def set_model(self, model: StripModel | None) -> None:
        self.model = model
        self.rate_label.setText(f"@ {_rate_text(model.rate)} fps" if model else "")
        self.set_range(None, None)
        self.set_playhead(0)

    def set_range(self, sel_in: int | None, sel_out: int | None) -> None:
        if self.model is None or sel_in is None or sel_out is None:
            self.in_edit.setText("")
            self.out_edit.setText("")
            self.duration_label.setText("")
            return
        self.in_edit.setText(self.model.timecode(sel_in))
        self.out_edit.setText(self.model.timecode(sel_out))
        n = sel_out - sel_in
        self.duration_label.setText(f"duration {self.model.duration_text(n)} "
                                    f"({n / self.model.rate:.2f} s)")

    def set_playhead(self, frame: int) -> None:
        self.playhead_label.setText(f"playhead {self.model.timecode(frame)}" if self.model else "")

    def _typed(self) -> None:
        a, b = self.in_edit.text().strip(), self.out_edit.text().strip()
        if a and b:
            self.rangeTyped.emit(a, b)


def _rate_text(rate: float) -> str:
    if abs(rate - round(rate)) < 1e-6:
        return str(int(round(rate)))
    return f"{rate:.3f}".rstrip("0")
