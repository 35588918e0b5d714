"""The takes list: every take of the session with its waveform, rhythm and cuts, playback,
keep / discard, and per-take "Export preview MP4…".

* :class:`WaveformView` draws a take's waveform (min/max per pixel column), the predicted
  rhythm curve (``take.conditions.odf``, one value per second) and the picture's cut marks
  (``take.conditions.cut_times``) over it, plus the playback position.
* :class:`AudioPreview` plays a WAV with QtMultimedia (QMediaPlayer + QAudioOutput), created
  lazily; where there is no audio output device (CI, offscreen) it reports that instead of
  playing, so nothing fails.
* :class:`TakeRow` / :class:`TakesList` show :class:`~diffv2m.plugin.session.TakeRecord`
  objects; they emit requests, the panel does the work through the session.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout,
                               QWidget)

from diffv2m.plugin.panel.rows import STRETCH, button, row_layout


def envelope(audio: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (min, max) of a ``[C, N]`` (or ``[N]``) signal, channels mixed to mono."""
    a = np.asarray(audio, np.float32)
    mono = a.mean(axis=0) if a.ndim == 2 else a
    n = mono.shape[0]
    columns = max(1, min(int(columns), max(n, 1)))
    if n == 0:
        z = np.zeros(columns, np.float32)
        return z, z
    edges = np.linspace(0, n, columns + 1).astype(np.int64)
    lo = np.minimum.reduceat(mono, edges[:-1])
    hi = np.maximum.reduceat(mono, edges[:-1])
    return lo, hi


class WaveformView(QWidget):
    """A take's waveform with the predicted rhythm curve and the cut marks drawn over it."""

    COLUMNS = 1200

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.take: Any = None
        self._lo = self._hi = np.zeros(1, np.float32)
        self.position = -1.0          # seconds; < 0 hides the play cursor
        self.setMinimumHeight(64)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Waveform (blue), predicted rhythm (orange, one value per second), "
                        "cuts in the picture (red)")

    def sizeHint(self) -> QSize:
        return QSize(480, 72)

    def set_take(self, take: Any) -> None:
        self.take = take
        self._lo, self._hi = envelope(take.audio, self.COLUMNS)
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    @property
    def odf(self) -> np.ndarray:
        return np.asarray(self.take.conditions.odf, np.float32) if self.take is not None else np.zeros(0)

    @property
    def cut_times(self) -> np.ndarray:
        if self.take is None:
            return np.zeros(0)
        return np.asarray(getattr(self.take.conditions, "cut_times", np.zeros(0)), np.float64)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        r = QRectF(self.rect())
        p.fillRect(r, QColor(24, 26, 30))
        if self.take is None:
            p.end()
            return
        dur = max(float(self.take.duration), 1e-6)
        w, h = r.width(), r.height()
        mid = h / 2
        # seconds grid
        p.setPen(QPen(QColor(55, 58, 66), 1))
        for s in range(1, int(dur) + 1):
            x = s / dur * w
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        # waveform
        n = len(self._lo)
        path = QPainterPath()
        xs = np.linspace(0, w, n)
        path.moveTo(xs[0], mid - float(self._hi[0]) * mid * 0.95)
        for x, v in zip(xs[1:], self._hi[1:]):
            path.lineTo(float(x), mid - float(v) * mid * 0.95)
        for x, v in zip(xs[::-1], self._lo[::-1]):
            path.lineTo(float(x), mid - float(v) * mid * 0.95)
        path.closeSubpath()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(90, 160, 230, 200))
        p.drawPath(path)
        # predicted rhythm: one value per second, drawn as steps
        odf = self.odf
        if odf.size:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(255, 160, 40), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            curve = QPainterPath()
            for k, v in enumerate(odf):
                x0, x1 = k / dur * w, min(k + 1, dur) / dur * w
                y = h - 3 - float(np.clip(v, 0, 1)) * (h - 6)
                if k == 0:
                    curve.moveTo(x0, y)
                else:
                    curve.lineTo(x0, y)
                curve.lineTo(x1, y)
            p.drawPath(curve)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        # cut marks
        p.setPen(QPen(QColor(235, 60, 60), 2, Qt.PenStyle.DashLine))
        for c in self.cut_times:
            if 0 <= c <= dur:
                x = float(c) / dur * w
                p.drawLine(QPointF(x, 0), QPointF(x, h))
        if self.position >= 0:
            x = self.position / dur * w
            p.setPen(QPen(QColor(250, 250, 250), 1))
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.end()


class AudioPreview(QObject):
    """Plays one take at a time with QtMultimedia; reports instead of failing without audio."""

    playing = Signal(object)        # the record playing now, or None when stopped
    position = Signal(float)        # seconds
    unavailable = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._player = None
        self._output = None
        self.current: Any = None

    @staticmethod
    def has_output() -> bool:
        try:
            from PySide6.QtMultimedia import QMediaDevices
            return bool(QMediaDevices.audioOutputs())
        except Exception:
            return False

    def _ensure(self) -> bool:
        if self._player is not None:
            return True
        if not self.has_output():
            return False
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        self._output = QAudioOutput(self)
        self._player = QMediaPlayer(self)
        self._player.setAudioOutput(self._output)
        self._player.positionChanged.connect(lambda ms: self.position.emit(ms / 1000.0))
        self._player.playbackStateChanged.connect(self._state)
        return True

    def play(self, record: Any) -> bool:
        if not self._ensure():
            self.unavailable.emit(f"No audio output device: play {record.path} in another player")
            return False
        self.stop()
        self.current = record
        self._player.setSource(QUrl.fromLocalFile(str(record.path)))
        self._player.play()
        self.playing.emit(record)
        return True

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
        if self.current is not None:
            self.current = None
            self.playing.emit(None)

    def _state(self, state) -> None:
        from PySide6.QtMultimedia import QMediaPlayer
        if state == QMediaPlayer.PlaybackState.StoppedState and self.current is not None:
            self.current = None
            self.playing.emit(None)


class TakeRow(QFrame):
    """One take: its seed, time and settings, play/stop, keep, discard, preview export."""

    playToggled = Signal(object)
    keepToggled = Signal(object, bool)
    discardClicked = Signal(object)
    previewClicked = Signal(object)

    def __init__(self, record: Any, number: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.record = record
        self.setFrameShape(QFrame.Shape.StyledPanel)
        take = record.take
        s = take.settings
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        self.title = QLabel(f"<b>Take {number}</b> · seed {s.seed} · {when}")
        score = getattr(take, "score", None)
        music = (f" · {score.ensemble.name}, {score.key}" if score is not None and score.key
                 else "")
        self.details = QLabel(f"{s.steps} steps · {s.sampler} · guidance {s.cfg_scale:g} · "
                              f"style {s.cls}{music} · {take.duration:.1f} s · {take.backend}")
        self.details.setStyleSheet("color: gray")
        self.saved_label = QLabel("")
        self.play_button = button("▶ Play", lambda: self.playToggled.emit(self.record))
        self.play_button.setCheckable(True)
        self.keep_box = QCheckBox("Keep")
        self.keep_box.setChecked(bool(record.kept))
        self.keep_box.setToolTip("Kept takes are the ones exported (all takes when none is kept)")
        self.keep_box.toggled.connect(lambda on: self.keepToggled.emit(self.record, on))
        self.discard_button = button(
            "Discard", lambda: self.discardClicked.emit(self.record),
            tip="Remove this take from the list (its file stays on disk)")
        self.preview_button = button("Export preview MP4…",
                                     lambda: self.previewClicked.emit(self.record))
        self.waveform = WaveformView()
        self.waveform.set_take(take)

        top = row_layout(self.title, (self.details, 1), self.saved_label)
        buttons = row_layout(self.play_button, self.keep_box, self.discard_button, STRETCH,
                             self.preview_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(top)
        lay.addWidget(self.waveform)
        lay.addLayout(buttons)

    def set_playing(self, on: bool) -> None:
        self.play_button.setChecked(on)
        self.play_button.setText("■ Stop" if on else "▶ Play")
        if not on:
            self.waveform.set_position(-1)

    def set_saved(self, saved: bool) -> None:
        self.saved_label.setText("exported" if saved else "not exported")
        self.saved_label.setStyleSheet("color: #3a3" if saved else "color: #c80")


class TakesList(QScrollArea):
    """The session's takes, newest first."""

    playToggled = Signal(object)
    keepToggled = Signal(object, bool)
    discardClicked = Signal(object)
    previewClicked = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._empty = QLabel("No takes yet: select a range and press Generate.")
        self._empty.setStyleSheet("color: gray")
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self.rows: list[TakeRow] = []
        self._count = 0

    def add(self, record: Any) -> TakeRow:
        self._count += 1
        row = TakeRow(record, self._count)
        row.playToggled.connect(self.playToggled)
        row.keepToggled.connect(self.keepToggled)
        row.discardClicked.connect(self.discardClicked)
        row.previewClicked.connect(self.previewClicked)
        self.rows.insert(0, row)
        self._layout.insertWidget(0, row)
        self._empty.setVisible(False)
        return row

    def row_for(self, record: Any) -> TakeRow | None:
        return next((r for r in self.rows if r.record is record), None)

    def remove(self, record: Any) -> None:
        row = self.row_for(record)
        if row is None:
            return
        self.rows.remove(row)
        self._layout.removeWidget(row)
        row.deleteLater()
        self._empty.setVisible(not self.rows)

    def clear(self) -> None:
        for row in list(self.rows):
            self.remove(row.record)
        self._count = 0
