"""``ScorePanel``: the dockable face of a :class:`~diffv2m.plugin.session.ScoringSession`.

All scoring logic lives in the session (selection, cached features, takes, export); the panel
only turns widgets into session calls and runs the long ones on a background thread
(:mod:`.worker`), so the UI never blocks.

Docking in a host application (Nuke Studio / Hiero, or any PySide6 app)::

    from PySide6.QtWidgets import QDockWidget
    from diffv2m.plugin.panel import ScorePanel

    dock = QDockWidget("Diff-V2M score", host_main_window)
    panel = ScorePanel()    # loads the default runtime in the background (cores - 1 threads)
    dock.setWidget(panel)
    panel.windowTitleChanged.connect(dock.setWindowTitle)   # "NAME* — 2 unsaved takes"
    host_main_window.addDockWidget(Qt.RightDockWidgetArea, dock)
    panel.open_path("/path/to/cut.otio")

Pass ``backend=`` to reuse an already loaded backend and ``settings=`` (a QSettings) to keep
the panel's settings elsewhere than the default ("DiffV2M" / "Studio").
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import opentimelineio as otio
from PySide6.QtCore import QSettings, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QSplitter, QVBoxLayout, QWidget

from diffv2m.errors import UserError

from diffv2m.plugin.panel.controls import GenerateControls
from diffv2m.plugin.panel.export_options import ExportOptions
from diffv2m.plugin.panel.picture import PicturePlayer
from diffv2m.plugin.panel.rows import STRETCH, button, row_layout
from diffv2m.plugin.panel.strip import SelectionBar, TimelineStrip, model_for_session
from diffv2m.plugin.panel.takes import AudioPreview, TakesList
from diffv2m.plugin.panel.worker import Job, panel_threads

APP_NAME = "Diff-V2M Studio"
LOADING = "loading the model"
OPEN_FILTER = ("Timelines and videos (*.otio *.otioz *.otiod *.edl *.xml *.fcpxml *.aaf *.kdenlive *.mlt "
               "*.mp4 *.mov *.mkv *.avi *.m4v *.webm *.mxf *.mpg *.mpeg);;All files (*)")


def default_settings() -> QSettings:
    """The user's settings: organisation "DiffV2M", application "Studio"."""
    return QSettings("DiffV2M", "Studio")


class ScorePanel(QWidget):
    """Timeline strip, generation controls, progress, takes and export, for one session."""

    sessionOpened = Signal(object)          # the ScoringSession
    backendReady = Signal(object)           # the Backend
    busyChanged = Signal(bool)
    progressed = Signal(str, int, int, float)
    takeAdded = Signal(object)              # TakeRecord
    generationEnded = Signal(str)           # "done" | "cancelled" | "failed"
    exported = Signal(object)               # Path written
    unsavedChanged = Signal(int)
    errorShown = Signal(str)

    def __init__(self, backend: Any = None, *, settings: QSettings | None = None,
                 backend_loader: Callable[[], Any] | None = None,
                 media_root: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None,
                 take_dir: str | os.PathLike | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.qsettings = settings if settings is not None else default_settings()
        self.backend = backend
        self.backend_loader = backend_loader
        self.font_loading = None            # the score renderer's SoundFont load (a thread)
        self.media_root, self.cache_dir, self.take_dir = media_root, cache_dir, take_dir
        self.session: Any = None
        self.job: Job | None = None
        self.last_error: str = ""
        self.message_box: QMessageBox | None = None
        self._exported: set[int] = set()      # id() of exported TakeRecords
        self._pending_path: Path | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)        # one session job at a time
        self._build()
        self.controls.restore(self.qsettings)
        self._update_title()
        if self.backend is not None:
            self._backend_loaded(self.backend)
        else:
            self._load_backend()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.open_button = button("Open…", self.ask_open,
                                  tip="Open a timeline (.otio, EDL, FCP XML, …) or a video")
        self.file_label = QLabel("No timeline or video open")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.selection_bar = SelectionBar()
        self.strip = TimelineStrip()
        self.controls = GenerateControls()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.takes = TakesList()
        self.export_button = button(
            "Export timeline…", lambda: self.export_timeline(), enabled=False,
            tip="Write a NEW timeline with a 'Diff-V2M score' track holding the kept takes "
                "(all takes when none is kept)")
        self.export_options = ExportOptions()
        self.export_options.restore(self.qsettings)
        self.export_options.changed.connect(lambda: self.export_options.save(self.qsettings))
        self.preview = AudioPreview(self)
        self.picture = PicturePlayer()
        self._picture_key: Any = None         # the selection the picture shows

        top = row_layout(self.open_button, (self.file_label, 1))
        upper = QWidget()
        ul = QVBoxLayout(upper)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addLayout(top)
        ul.addWidget(self.selection_bar)
        ul.addLayout(row_layout((self.strip, 3), (self.picture, 2)))
        ul.addWidget(self.controls)
        ul.addWidget(self.status)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.takes, 1)
        ll.addLayout(row_layout(STRETCH, self.export_options, self.export_button))
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(upper)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.splitter)

        self.strip.selectionEdited.connect(self._strip_selection)
        self.strip.markerClicked.connect(self.select_marker)
        self.strip.playheadMoved.connect(self.selection_bar.set_playhead)
        self.selection_bar.rangeTyped.connect(self.select_typed)
        self.controls.generateClicked.connect(self.generate)
        self.controls.newSeedClicked.connect(self.new_seed)
        self.controls.cancelClicked.connect(self.cancel)
        self.controls.settingsChanged.connect(lambda: self.controls.save(self.qsettings))
        self.takes.playToggled.connect(self.toggle_play)
        self.takes.keepToggled.connect(self._keep)
        self.takes.discardClicked.connect(self.discard)
        self.takes.previewClicked.connect(lambda rec: self.export_preview(rec))
        self.preview.playing.connect(self._playing)
        self.preview.position.connect(self._play_position)
        self.preview.unavailable.connect(lambda msg: self.show_message(msg))
        self.picture.unavailable.connect(lambda msg: self.show_message(msg))
        self.picture.position.connect(self._picture_position)
        self.picture.playing.connect(lambda rec: self.preview.stop() if rec is not None else None)

    # -- backend ----------------------------------------------------------------------------
    def _load_backend(self) -> None:
        loader = self.backend_loader
        if loader is None:
            from diffv2m.runtime.ort import load_runtime

            def loader():
                return load_runtime(threads=panel_threads())
        self.controls.set_backend(None)
        self._run(Job(lambda progress: loader(), LOADING),
                  on_result=self._backend_loaded, label=LOADING)

    def _backend_loaded(self, backend: Any) -> None:
        self.backend = backend
        self.controls.set_backend(getattr(backend, "name", type(backend).__name__))
        self.export_options.set_backend(backend)
        family = getattr(getattr(backend, "config", None), "latent_family", None)
        self.controls.set_family(family)
        if family == "score":           # the SoundFont loads while the editor picks a range
            from diffv2m.score.render import preload
            from diffv2m.score.take import presets
            self.font_loading = preload(None, backend.config.autoencoder.sample_rate,
                                        presets())
        self.backendReady.emit(backend)
        self._update_ready()            # a file given meanwhile opens when the job is done

    # -- opening ----------------------------------------------------------------------------
    def ask_open(self) -> None:
        start = str(self.qsettings.value("files/last_dir", "") or "")
        path, _ = QFileDialog.getOpenFileName(self, "Open a timeline or video", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike) -> bool:
        """Open a timeline or a video; the whole of it is selected. Errors go to the status."""
        from diffv2m.plugin.session import ScoringSession
        path = Path(path)
        if self.backend is None or (self.job is not None and self.job.name == LOADING):
            self._pending_path = path
            self.file_label.setText(f"{path.name} (waiting for the model…)")
            return True
        if self.is_busy():
            self.show_error("Wait for the running job to finish (or cancel it) before opening "
                            "another file")
            return False
        try:
            session = ScoringSession(path, self.backend, media_root=self.media_root,
                                     cache_dir=self.cache_dir, take_dir=self.take_dir)
        except UserError as exc:
            self.show_error(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - a broken file must not crash the panel
            self.show_error(f"{path}: cannot open: {type(exc).__name__}: {exc}", unexpected=True)
            return False
        self.preview.stop()
        self.picture.stop()
        self.session = session
        self._exported.clear()
        self.takes.clear()
        self.picture.set_takes([])
        self.qsettings.setValue("files/last_dir", str(path.parent))
        self.qsettings.setValue("files/last_file", str(path))
        self.file_label.setText(f"{path.name}  ({session.kind}, {session.rate:g} fps)")
        model = model_for_session(session)
        self.strip.set_model(model)
        self.selection_bar.set_model(model)
        self.show_message(f"Opened {path}")
        if session.selection is None:             # a timeline: all of it (a video: done)
            try:
                session.select()
                self._show_warnings()
            except UserError as exc:
                self.show_error(str(exc))
        self._show_selection()
        self._update_title()
        self._update_ready()
        self.sessionOpened.emit(session)
        return True

    # -- selection --------------------------------------------------------------------------
    def selection_frames(self) -> tuple[int, int] | None:
        """The session's selection as timeline frames (in, out exclusive), or None."""
        s = self.session
        if s is None or s.selection is None:
            return None
        start = s.selection.start_time.rescaled_to(s.rate)
        dur = s.selection.duration.rescaled_to(s.rate)
        return int(round(start.value)), int(round(start.value + dur.value))

    def select_frames(self, sel_in: int, sel_out: int) -> bool:
        """Select ``[in, out)`` in timeline frames (what the strip edits)."""
        s = self.session
        if s is None:
            return False
        r = s.rate
        RT = otio.opentime.RationalTime
        return self._apply(lambda: s.select(range=(RT(sel_in, r), RT(sel_out, r))))

    def select_marker(self, name: str) -> bool:
        s = self.session
        if s is None:
            return False
        return self._apply(lambda: s.select(marker=name))

    def select_typed(self, in_text: str, out_text: str) -> bool:
        """IN/OUT typed as timecode (record TC), frames or seconds, in the timeline's rate."""
        s = self.session
        if s is None:
            return False
        return self._apply(lambda: s.select(range=(in_text, out_text)))

    def _strip_selection(self, sel_in: int, sel_out: int) -> None:
        self.select_frames(sel_in, sel_out)

    def _apply(self, fn: Callable[[], None]) -> bool:
        if self.is_busy():
            self.show_error("The selection cannot change while a take is being generated")
            self._show_selection()
            return False
        try:
            fn()
        except UserError as exc:
            self.show_error(str(exc))
            self._show_selection()
            return False
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"selection failed: {type(exc).__name__}: {exc}", unexpected=True)
            self._show_selection()
            return False
        self._show_selection()
        a, b = self.session.selection_seconds
        self.show_message(f"Selected {b - a:.2f} s")
        self._show_warnings()
        self._update_ready()
        return True

    def _show_selection(self) -> None:
        fr = self.selection_frames()
        self.strip.set_selection(*(fr or (None, None)))
        self.selection_bar.set_range(*(fr or (None, None)))
        self._update_picture()

    # -- picture ----------------------------------------------------------------------------
    def _update_picture(self, render: bool = False) -> None:
        """Show the selection's picture beside the strip: a video's file from the selection's
        start; a timeline's selection rendered once (after its first take) as a proxy."""
        s = self.session
        if s is None or s.selection is None:
            self.picture.set_picture(None)
            self._picture_key = None
            return
        a, b = s.selection_seconds
        key = (str(s.path), round(a, 6), round(b, 6))
        if key == self._picture_key:
            return
        picture = s.picture_file
        if picture is not None:                   # one file's range: shown at once
            self._picture_key = key
            self.picture.set_picture(*picture, s.rate)
        elif render and s._source is not None:
            self._picture_key = key
            self.picture.render_proxy(s._source, s.rate, pool=self.pool)
        else:
            self.picture.set_picture(None)
            self.picture.label.setText("The picture is rendered after the first take")

    def _picture_position(self, seconds: float) -> None:
        fr = self.selection_frames()
        if fr is not None and self.session is not None:
            self.strip.playhead = int(fr[0] + round(seconds * self.session.rate))
            self.strip.update()
            self.selection_bar.set_playhead(self.strip.playhead)
        row = self.takes.row_for(self.picture.current)
        if row is not None:
            row.waveform.set_position(seconds)

    # -- generation -------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self.job is not None

    def generate(self) -> bool:
        """Generate one take of the selection with the controls' settings (in the background)."""
        s = self.session
        if s is None or self.backend is None or self.is_busy():
            return False
        if s.selection is None:
            self.show_error("Select a range, clips or a marker first")
            return False
        settings = self.controls.settings()
        self.controls.save(self.qsettings)
        job = Job(lambda progress: s.generate(settings, progress=progress),
                  f"take with seed {settings.seed}")
        job.signals.progress.connect(self._progress)
        steps = "the model's steps" if settings.steps is None else f"{settings.steps} steps"
        self.show_message(f"Generating a take (seed {settings.seed}, {steps})…")
        self._run(job, on_result=self._take_ready, label="generation")
        return True

    def new_seed(self) -> bool:
        """Next seed, same selection: the features are reused by the session."""
        if self.session is None or self.is_busy():
            return False
        used = {r.seed for r in self.session.takes}
        seed = self.controls.next_seed()
        while seed in used:
            seed = self.controls.next_seed()
        return self.generate()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.controls.cancel_button.setEnabled(False)
            self.show_message("Cancelling…")

    def _progress(self, stage: str, done: int, total: int, left: float) -> None:
        self.controls.show_progress(stage, done, total, left)
        self.progressed.emit(stage, done, total, left)

    def _take_ready(self, record: Any) -> None:
        s = self.session
        for old in [r for r in s.takes if r is not record and r.path == record.path]:
            s.takes.remove(old)               # same seed again: the file was replaced
            self.takes.remove(old)
            self._exported.discard(id(old))
        self.takes.add(record)
        t = record.take.timings
        self.show_message(f"Take written: {record.path.name} ({record.take.duration:.1f} s of "
                          f"music in {t.get('total', 0):.1f} s; features "
                          f"{t.get('conditions', 0):.1f} s, sampling {t.get('sampling', 0):.1f} s)")
        self._refresh_saved()
        self.picture.set_takes(s.takes)
        self._update_picture(render=True)
        self._show_warnings()
        self.takeAdded.emit(record)

    # -- jobs -------------------------------------------------------------------------------
    def _run(self, job: Job, *, on_result: Callable[[Any], None], label: str) -> None:
        self.job = job
        job.signals.result.connect(on_result)
        job.signals.failed.connect(self._failed)
        job.signals.cancelled.connect(lambda: self._cancelled(label))
        job.signals.done.connect(lambda: self._job_done(job))
        self.controls.set_busy(True)
        self.strip.setEnabled(False)
        self.selection_bar.setEnabled(False)
        self.export_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.busyChanged.emit(True)
        self.pool.start(job)

    def _job_done(self, job: Job) -> None:
        if self.job is job:
            self.job = None
        self.controls.set_busy(False)
        self.strip.setEnabled(True)
        self.selection_bar.setEnabled(True)
        self.open_button.setEnabled(True)
        self.controls.show_idle()
        self._update_ready()
        self.busyChanged.emit(False)
        if job.name.startswith("take"):
            self.generationEnded.emit(job.outcome or "failed")
        if self._pending_path is not None and self.backend is not None:
            path, self._pending_path = self._pending_path, None
            self.open_path(path)

    def _failed(self, message: str, details: str, user_error: bool) -> None:
        if self.backend is None and self.job is not None and self.job.name == LOADING:
            self.controls.set_backend(None, error=message)
        self.show_error(message, details=details, unexpected=not user_error)

    def _cancelled(self, label: str) -> None:
        self.show_message(f"Cancelled {label}; nothing was written.")

    def shutdown(self, msecs: int = 5000) -> bool:
        """Cancel running work and wait (bounded) for the threads; True when all stopped."""
        from shiboken6 import isValid
        if self.job is not None:
            self.job.cancel()
        if not isValid(self):                 # already destroyed with its window
            return True
        self.preview.stop()
        self.picture.shutdown()
        self.strip.thumbnails.shutdown(msecs)
        return self.pool.waitForDone(msecs)

    # -- takes ------------------------------------------------------------------------------
    def _keep(self, record: Any, on: bool) -> None:
        record.kept = bool(on)

    def discard(self, record: Any) -> None:
        if self.preview.current is record:
            self.preview.stop()
        if self.session is not None and record in self.session.takes:
            self.session.takes.remove(record)
        self.takes.remove(record)
        self.picture.set_takes(self.session.takes if self.session is not None else [])
        self._exported.discard(id(record))
        self.show_message(f"Discarded seed {record.seed} (its file stays: {record.path})")
        self._refresh_saved()

    def toggle_play(self, record: Any) -> None:
        if self.preview.current is record:
            self.preview.stop()
        else:
            self.preview.play(record)
        row = self.takes.row_for(record)
        if row is not None:
            row.set_playing(self.preview.current is record)

    def _playing(self, record: Any) -> None:
        for row in self.takes.rows:
            row.set_playing(row.record is record)

    def _play_position(self, seconds: float) -> None:
        row = self.takes.row_for(self.preview.current)
        if row is not None:
            row.waveform.set_position(seconds)

    def unsaved_count(self) -> int:
        if self.session is None:
            return 0
        return sum(1 for r in self.session.takes if id(r) not in self._exported)

    def _refresh_saved(self) -> None:
        for row in self.takes.rows:
            row.set_saved(id(row.record) in self._exported)
        self.export_button.setEnabled(bool(self.session and self.session.takes) and not self.is_busy())
        self._update_title()
        self.unsavedChanged.emit(self.unsaved_count())

    # -- export -----------------------------------------------------------------------------
    def default_export_path(self) -> Path:
        p = self.session.path
        return p.with_name(f"{p.stem}.scored.otio")

    def _ask_save_path(self, title: str, default: Path, filt: str) -> str:
        """Ask where to save (a method so that tests and hosts can replace the dialog)."""
        path, _ = QFileDialog.getSaveFileName(self, title, str(default), filt)
        return path

    def export_timeline(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a NEW timeline with the kept takes (all when none is kept)."""
        s = self.session
        if s is None or not s.takes:
            self.show_error("No takes to export yet")
            return None
        if path is None:
            path = self._ask_save_path("Export timeline", self.default_export_path(),
                                       "OpenTimelineIO (*.otio);;All files (*)")
            if not path:
                return None
        records = [r for r in s.takes if r.kept] or list(s.takes)
        midi, stems = self.export_options.paths(path)
        try:
            if midi or stems:
                out = s.export_with_score_files(path, records, midi=midi, stems=stems)
            else:
                out = s.export_timeline(path, records)
        except UserError as exc:
            self.show_error(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"{path}: export failed: {type(exc).__name__}: {exc}", unexpected=True)
            return None
        self._exported.update(id(r) for r in records)
        also = [str(p) for p in (midi, stems) if p]
        self.show_message(f"Exported {len(records)} take(s) to {out}"
                          + (f" (and {', '.join(also)})" if also else ""))
        self._refresh_saved()
        self.exported.emit(Path(out))
        return Path(out)

    def export_preview(self, record: Any, path: str | os.PathLike | None = None) -> bool:
        """Mux the selection's picture with a take's music into an MP4 (in the background)."""
        s = self.session
        if s is None or self.is_busy():
            return False
        if path is None:
            default = record.path.with_suffix(".preview.mp4")
            path = self._ask_save_path("Export preview MP4", default, "MP4 video (*.mp4)")
            if not path:
                return False
        job = Job(lambda progress: s.export_preview(record, path), "preview export")
        self.show_message(f"Writing the preview {path}…")
        self._run(job, on_result=self._preview_written, label="the preview export")
        return True

    def _preview_written(self, out: Any) -> None:
        self.show_message(f"Preview written: {out}")
        self.exported.emit(Path(out))

    # -- status / title ---------------------------------------------------------------------
    def _show_warnings(self) -> None:
        """Selection warnings (mostly black picture, title stand-ins...) after the status."""
        warn = getattr(self.session, "warnings", None)
        if warn:
            self.status.setStyleSheet("color: #c80")
            self.status.setText(self.status.text() + "\nWarning: " + "\nWarning: ".join(warn))

    def show_message(self, text: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(text)

    def show_error(self, message: str, details: str = "", unexpected: bool = False) -> None:
        """Readable error in the status area; unexpected ones also in a non-modal message box."""
        self.last_error = message
        self.status.setStyleSheet("color: #d33")
        self.status.setText(message)
        self.errorShown.emit(message)
        if unexpected:
            box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, message,
                              QMessageBox.StandardButton.Close, self)
            box.setInformativeText("This looks like a bug; the details below help to report it.")
            if details:
                box.setDetailedText(details)
            box.setModal(False)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.show()
            self.message_box = box

    def _update_ready(self) -> None:
        ready = (self.backend is not None and self.session is not None
                 and self.session.selection is not None and not self.is_busy())
        self.controls.set_ready(ready)
        self.export_button.setEnabled(bool(self.session and self.session.takes) and not self.is_busy())

    def title(self) -> str:
        if self.session is None:
            return APP_NAME
        n = self.unsaved_count()
        name = self.session.path.name
        if n:
            return f"{name}* — {n} unsaved take{'s' if n != 1 else ''} — {APP_NAME}"
        return f"{name} — {APP_NAME}"

    def _update_title(self) -> None:
        self.setWindowTitle(self.title())
