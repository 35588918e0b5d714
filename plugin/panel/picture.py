"""Picture and take together: a QtMultimedia video output with the take's audio in sync.

:class:`PicturePlayer` plays the selection's picture (the video file from the selection's
start, or for a timeline a proxy of the selection rendered once in the background with
:func:`diffv2m.plugin.preview.render_picture`) in a :class:`VideoView` (a ``QVideoSink`` painted by the widget) while a second
``QMediaPlayer`` plays a take from its start.  The audio is the clock: a timer compares the
two players and re-seeks the picture when it is more than ``RESYNC_FRAMES`` off.  **A/B**
(:meth:`PicturePlayer.switch`) swaps the take under the same playhead.

QMediaPlayer reports positions coarsely (the FFmpeg backend's audio in chunks of ~85 ms, the
picture once per frame) and the reports reach the UI thread late by a variable amount, so
each player's position is estimated by :class:`PlayClock`: the largest of the recent reports
extrapolated at the playback rate (a report can only be late, never early).

Without an audio device (headless machines) Qt's FFmpeg backend still runs the audio
player's clock, so picture and take stay in step, silently; ``audioDevice`` says so.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QElapsedTimer, QRectF, QSize, Qt, QThreadPool, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from diffv2m.plugin.panel.rows import button, row_layout

RESYNC_FRAMES = 2.0       # re-seek the picture beyond this drift
TICK_MS = 20
HISTORY_S = 1.0


class PlayClock:
    """A smooth position from coarse, late position reports (see the module doc)."""

    def __init__(self, history: float = HISTORY_S):
        self.history = history
        self._reports: list[tuple[float, float]] = []      # (position s, report time s)

    def report(self, position: float, at: float) -> None:
        self._reports.append((float(position), float(at)))
        self._reports = [r for r in self._reports if at - r[1] <= self.history]

    def reset(self) -> None:
        self._reports.clear()

    def estimate(self, now: float, rate: float = 1.0) -> float | None:
        if not self._reports:
            return None
        return max(p + (now - t) * rate for p, t in self._reports)


def _fmt(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60.0)
    return f"{int(m):02d}:{s:06.3f}"


class VideoView(QWidget):
    """A QtMultimedia video output (``QVideoSink``) painted by QPainter, letterboxed.

    Drawn in the widget itself (not a native child window as ``QVideoWidget`` may be), so it
    docks anywhere and ``QWidget.grab()`` captures the picture.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from PySide6.QtMultimedia import QVideoSink
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._frame)
        self.image = QImage()
        self.frames_shown = 0
        self.setMinimumSize(240, 135)

    def videoSink(self):  # noqa: N802 - the QVideoWidget spelling
        return self.sink

    def sizeHint(self) -> QSize:
        return QSize(320, 180)

    def _frame(self, frame) -> None:
        if frame.isValid():
            self.image = frame.toImage()
            self.frames_shown += 1
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(12, 12, 14))
        if not self.image.isNull():
            size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x, y = (self.width() - size.width()) / 2, (self.height() - size.height()) / 2
            p.drawImage(QRectF(x, y, size.width(), size.height()), self.image)
        p.end()


def _stop(player) -> None:
    """``player.stop()`` with the interpreter lock released (as PySide releases it for
    ``setSource``): stopping tears down Qt's playback threads, whose objects' teardown calls
    back into the Python wrappers of our QAudioOutput/QMediaPlayer; holding the lock here while
    waiting for those threads deadlocks the panel.  ``QMetaObject.invokeMethod`` (a direct
    call, same semantics) releases it."""
    from PySide6.QtCore import QMetaObject
    if not QMetaObject.invokeMethod(player, "stop", Qt.ConnectionType.DirectConnection):
        player.stop()                   # no such slot (never in Qt 6): the plain call


class PicturePlayer(QWidget):
    """Video output + synced take audio, with A/B between takes (one playhead)."""

    playing = Signal(object)            # the take playing, or None
    position = Signal(float)            # playhead, seconds from the selection's start
    synced = Signal()                   # picture and take are aligned (after each start/seek)
    unavailable = Signal(str)
    pictureReady = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
        self._QMP = QMediaPlayer
        self.video = VideoView(self)
        self.play_button = button("▶ Play with picture", self.toggle, enabled=False)
        self.ab_button = button("A/B", self.next_take, enabled=False,
                                tip="Switch to the other take without moving the playhead")
        self.label = QLabel("No picture")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.video, 1)
        lay.addLayout(row_layout(self.play_button, self.ab_button, (self.label, 1)))

        self._elapsed = QElapsedTimer()
        self._elapsed.start()
        self.vplayer = QMediaPlayer(self)
        self.vplayer.setVideoOutput(self.video.sink)
        self.aplayer = QMediaPlayer(self)
        self.audio_out = QAudioOutput(self)
        self.aplayer.setAudioOutput(self.audio_out)
        self.audioDevice = bool(QMediaDevices.audioOutputs())
        self._vclock, self._aclock = PlayClock(), PlayClock()
        # Bound methods of this (GUI-thread) object, never lambdas: a signal Qt emits from its
        # media threads is then queued to the GUI thread instead of running Python there.
        self.vplayer.positionChanged.connect(self._video_position)
        self.aplayer.positionChanged.connect(self._audio_position)
        self.aplayer.mediaStatusChanged.connect(self._audio_status)
        self.vplayer.errorOccurred.connect(self._video_error)
        self.aplayer.errorOccurred.connect(self._audio_error)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

        self.picture_path: Path | None = None
        self.start = 0.0                # selection start inside the picture file, seconds
        self.duration = 0.0
        self.fps = 24.0
        self.takes: list[Any] = []
        self.current: Any = None
        self._pending: tuple[Any, float] | None = None     # (take, playhead) waiting for loads
        self._aligned = False
        self.resyncs = 0
        self.started_at = 0.0           # the playhead the latest play()/switch() started from
        self._proxy_dir: tempfile.TemporaryDirectory | None = None
        self._proxy_job: Any = None
        self._alive: list[Any] = []

    # -- time --------------------------------------------------------------------------------
    def _now(self) -> float:
        return self._elapsed.nsecsElapsed() / 1e9

    def _playing(self, player) -> bool:
        return player.playbackState() == self._QMP.PlaybackState.PlayingState

    def audio_seconds(self) -> float:
        """The take's position (seconds from the selection's start)."""
        est = self._aclock.estimate(self._now(), self.aplayer.playbackRate()) \
            if self._playing(self.aplayer) else None
        return est if est is not None else self.aplayer.position() / 1000.0

    def video_seconds(self) -> float:
        """The picture's position, from the selection's start."""
        est = self._vclock.estimate(self._now(), self.vplayer.playbackRate()) \
            if self._playing(self.vplayer) else None
        return (est if est is not None else self.vplayer.position() / 1000.0) - self.start

    def drift(self) -> float:
        """Picture minus take, seconds (positive: the picture is ahead)."""
        return self.video_seconds() - self.audio_seconds()

    def playhead(self) -> float:
        return self.audio_seconds()

    # -- picture ----------------------------------------------------------------------------
    def set_picture(self, path: str | Path | None, start: float = 0.0, duration: float = 0.0,
                    fps: float = 24.0) -> None:
        """Show ``path`` from ``start`` s for ``duration`` s (None: no picture)."""
        self.stop()
        self._proxy_job = None          # a proxy still rendering is for another selection
        self.picture_path = Path(path) if path else None
        self.start, self.duration, self.fps = float(start), float(duration), float(fps or 24.0)
        if self.picture_path is None:
            self.vplayer.setSource(QUrl())
            self.label.setText("No picture")
        else:
            self.vplayer.setSource(QUrl.fromLocalFile(str(self.picture_path)))
            self.vplayer.setPosition(int(round(self.start * 1000)))
            self.label.setText(f"{self.picture_path.name} from {_fmt(self.start)}")
            self.pictureReady.emit()
        self._update_buttons()

    def render_proxy(self, source: Any, fps: float, height: int = 270,
                     pool: QThreadPool | None = None,
                     on_done: Callable[[], None] | None = None) -> None:
        """A timeline selection's picture, rendered once in the background, then shown."""
        from diffv2m.plugin.panel.worker import Job
        from diffv2m.plugin.preview import render_picture
        if self._proxy_dir is None:
            self._proxy_dir = tempfile.TemporaryDirectory(prefix="diffv2m-picture-")
        out = Path(self._proxy_dir.name) / f"picture-{id(source)}.mp4"
        self.label.setText("Rendering the picture…")

        def render(progress):
            size = None
            native = getattr(source, "_size", None)      # TimelineFrameSource: first frame's
            if native is not None:
                w, h = native(None)
                if h > height:
                    size = (max(2, round(w * height / h / 2) * 2), height)
            return render_picture(source, out, fps=fps, size=size)
        job = Job(render, "picture")

        def ready(path):
            if self._proxy_job is not job:
                return                 # the selection changed while it rendered
            self._proxy_job = None
            self.set_picture(path, 0.0, float(source.duration), fps)
            if on_done is not None:
                on_done()
        job.signals.result.connect(ready)
        job.signals.failed.connect(lambda msg, *_: self.unavailable.emit(f"picture: {msg}"))
        self._proxy_job = job
        self._alive.append(job)        # the pool does not own it (autoDelete off): keep it
        job.signals.done.connect(lambda: self._alive.remove(job) if job in self._alive else None)
        (pool or QThreadPool.globalInstance()).start(job)

    # -- takes ------------------------------------------------------------------------------
    def set_takes(self, records: list[Any]) -> None:
        self.takes = list(records)
        if self.current is not None and self.current not in self.takes:
            self.stop()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.play_button.setEnabled(self.picture_path is not None and bool(self.takes))
        self.ab_button.setEnabled(self.picture_path is not None and len(self.takes) > 1)
        self.play_button.setText("■ Stop" if self.current is not None else "▶ Play with picture")

    def toggle(self) -> None:
        if self.current is not None:
            self.stop()
        elif self.takes:
            self.play(self.takes[-1])

    def play(self, record: Any, at: float = 0.0) -> bool:
        """Play ``record`` with the picture from ``at`` seconds into the selection."""
        if self.picture_path is None:
            self.unavailable.emit("No picture to play the take against")
            return False
        self._timer.stop()
        self.vplayer.pause()
        _stop(self.aplayer)
        self.current = record
        self._aligned = False
        self._pending = (record, float(at))
        self.started_at = float(at)
        self._aclock.reset()
        self._vclock.reset()
        self.aplayer.setSource(QUrl.fromLocalFile(str(record.path)))
        self._update_buttons()
        self.playing.emit(record)
        if self.aplayer.mediaStatus() in (self._QMP.MediaStatus.LoadedMedia,
                                          self._QMP.MediaStatus.BufferedMedia):
            self._start_pending()
        return True

    def switch(self, record: Any) -> bool:
        """A/B: continue with ``record`` from the current playhead."""
        at = self.playhead() if self.current is not None else 0.0
        return self.play(record, at)

    def next_take(self) -> None:
        if not self.takes:
            return
        if self.current in self.takes:
            nxt = self.takes[(self.takes.index(self.current) + 1) % len(self.takes)]
        else:
            nxt = self.takes[-1]
        self.switch(nxt)

    def stop(self) -> None:
        self._timer.stop()
        self._pending = None
        _stop(self.aplayer)
        self.vplayer.pause()
        if self.current is not None:
            self.current = None
            self.playing.emit(None)
        self._update_buttons()

    @Slot(int)
    def _video_position(self, ms: int) -> None:
        self._vclock.report(ms / 1000.0, self._now())

    @Slot(int)
    def _audio_position(self, ms: int) -> None:
        self._aclock.report(ms / 1000.0, self._now())

    def _video_error(self, _error, message: str) -> None:
        self.unavailable.emit(f"picture: {message}")

    def _audio_error(self, _error, message: str) -> None:
        self.unavailable.emit(f"take: {message}")

    def _audio_status(self, status) -> None:
        if status in (self._QMP.MediaStatus.LoadedMedia, self._QMP.MediaStatus.BufferedMedia) \
                and self._pending is not None:
            self._start_pending()
        elif status == self._QMP.MediaStatus.EndOfMedia and self.current is not None:
            self.stop()

    def _start_pending(self) -> None:
        record, at = self._pending
        self._pending = None
        self.aplayer.setPosition(int(round(at * 1000)))
        self.vplayer.setPosition(int(round((self.start + at) * 1000)))
        self.aplayer.play()            # the clock; the picture starts once the audio runs
        self._timer.start()

    # -- sync -------------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.current is None:
            return
        if not self._aligned:
            if self._aclock.estimate(self._now()) is None:
                return                 # the audio has not produced a position yet
            self.vplayer.setPosition(int(round((self.start + self.audio_seconds()) * 1000)))
            self._vclock.reset()
            self.vplayer.play()
            self._aligned = True
            self._since_align = self._now()
            self._synced_sent = False
            return
        a = self.audio_seconds()
        if not self._synced_sent and self._vclock.estimate(self._now()) is not None:
            d = self.drift()
            if abs(d) <= 1.0 / self.fps:
                self._synced_sent = True
                self.synced.emit()
        if self._vclock.estimate(self._now()) is not None and self._now() - self._since_align > 0.3:
            if abs(self.drift()) > RESYNC_FRAMES / self.fps:
                self.resyncs += 1
                self.vplayer.setPosition(int(round((self.start + a) * 1000)))
                self._vclock.reset()
                self._since_align = self._now()
        self.label.setText(f"seed {getattr(self.current, 'seed', '?')}  {_fmt(a)}"
                           + ("" if self.audioDevice else "  (no audio device: silent)"))
        self.position.emit(a)

    def shutdown(self) -> None:
        self.stop()
        self.vplayer.setSource(QUrl())
        self.aplayer.setSource(QUrl())
        if self._proxy_dir is not None:
            self._proxy_dir.cleanup()
            self._proxy_dir = None
