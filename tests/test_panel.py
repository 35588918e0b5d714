"""The PySide6 panel, driven through its real widgets offscreen with pytest-qt.

The backend is a fixture: the real torch-free runtime over the embedded default's ONNX graphs
when ``diffv2m.runtime.ort`` and ``diffv2m/assets/default/onnx/manifest.json`` exist (or
over the graphs in ``$DIFFV2M_TEST_ONNX_DIR``), else
the deterministic numpy test double ``tests/panel_backend.ToyBackend``.  Either way it is
wrapped in :class:`SpyBackend`, which counts network calls (to check that Cancel stops within
one sampler step and that a new seed does not recompute features).

Screenshots go to ``tests/artifacts/`` (git-ignored).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QImage  # noqa: E402
from PySide6.QtWidgets import QDockWidget, QMainWindow  # noqa: E402

from mediagen import make_video  # noqa: E402
from panel_backend import ToyBackend  # noqa: E402

from diffv2m.plugin.panel.panel import ScorePanel  # noqa: E402
from diffv2m.plugin.panel.window import MainWindow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
GEN_TIMEOUT_MS = 240_000


def real_runtime_available() -> bool:
    """The export runtime module and the embedded default's exported graphs are both there."""
    from diffv2m.assets import default_onnx_dir
    try:
        has_runtime = importlib.util.find_spec("diffv2m.runtime.ort") is not None
    except ModuleNotFoundError:
        has_runtime = False
    return has_runtime and (default_onnx_dir() / "manifest.json").is_file()


class SpyBackend:
    """Delegates to a Backend and counts its calls; ``watch`` is a job whose cancel flag marks
    the calls made after Cancel was pressed."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.config = inner.config
        self.calls: Counter[str] = Counter()
        self.after_cancel: Counter[str] = Counter()
        self.watch = None

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def _count(self, name):
        self.calls[name] += 1
        if self.watch is not None and self.watch.cancel_requested:
            self.after_cancel[name] += 1

    def encode_semantic(self, *a, **k):
        self._count("encode_semantic")
        return self.inner.encode_semantic(*a, **k)

    def predict_rhythm(self, *a, **k):
        self._count("predict_rhythm")
        return self.inner.predict_rhythm(*a, **k)

    def denoise(self, *a, **k):
        self._count("denoise")
        return self.inner.denoise(*a, **k)

    def decode(self, *a, **k):
        self._count("decode")
        return self.inner.decode(*a, **k)


@pytest.fixture(scope="session")
def real_backend():
    """``load_runtime()`` over the embedded graphs (or over DIFFV2M_TEST_ONNX_DIR when set,
    to exercise the real runtime with any exported graphs); None when unavailable."""
    from diffv2m.plugin.panel.worker import panel_threads
    from diffv2m.runtime.ort import load_runtime
    override = os.environ.get("DIFFV2M_TEST_ONNX_DIR")
    if override:
        return load_runtime(override, threads=panel_threads())   # as the panel loads it
    if not real_runtime_available():
        return None
    return load_runtime(threads=panel_threads())


@pytest.fixture
def backend(real_backend):
    """Real runtime when its graphs ship, else the ToyBackend (slow enough steps to cancel)."""
    return SpyBackend(real_backend if real_backend is not None else ToyBackend(step_delay=0.02))


@pytest.fixture
def is_real(real_backend) -> bool:
    return real_backend is not None


# ------------------------------------------------------------------------------ media

def _clip(name, media, frames, rate, start=0):
    ref = otio.schema.ExternalReference(
        target_url=str(media), available_range=TR(RT(0, rate), RT(frames, rate)))
    return otio.schema.Clip(name=name, media_reference=ref,
                            source_range=TR(RT(start, rate), RT(frames, rate)))


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Two 2 s videos, a 24 fps .otio over them (V1: A, B; an audio track; marker "chorus"
    from 1 s to 3 s) and a 29.97 drop-frame .otio starting at 01:00:00;00."""
    d = tmp_path_factory.mktemp("panel-media")
    a = make_video(d / "a.mp4", seconds=2.0, cut_times=(1.0,), size=(96, 64))
    b = make_video(d / "b.mp4", seconds=2.0, size=(96, 64),
                   colours=((30, 200, 60), (220, 220, 220)))
    r = 24
    v1 = otio.schema.Track(name="V1", children=[_clip("A", "a.mp4", 48, r), _clip("B", "b.mp4", 48, r)])
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio,
                           children=[_clip("music", "a.mp4", 96, r)])
    tl = otio.schema.Timeline(name="cut", tracks=[v1, a1])
    tl.tracks.markers.append(otio.schema.Marker(name="chorus", marked_range=TR(RT(24, r), RT(48, r))))
    otio.adapters.write_to_file(tl, str(d / "cut.otio"))

    ntsc = 30000 / 1001
    c = make_video(d / "c.mp4", seconds=3.0, fps=Fraction(30000, 1001), size=(96, 64),
                   cut_times=(1.5,))
    n = c.n_frames
    v = otio.schema.Track(name="V1", children=[_clip("C", "c.mp4", n, ntsc)])
    tl2 = otio.schema.Timeline(name="ntsc", tracks=[v])
    tl2.global_start_time = otio.opentime.from_timecode("01:00:00;00", ntsc)
    otio.adapters.write_to_file(tl2, str(d / "ntsc.otio"))
    return {"dir": d, "a": a.path, "b": b.path, "cut": d / "cut.otio", "ntsc": d / "ntsc.otio",
            "video": a.path}


@pytest.fixture
def qsettings(tmp_path):
    """A throw-away INI file, so tests never touch the user's DiffV2M/Studio settings."""
    return QSettings(str(tmp_path / "panel.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_panel(qtbot, backend, tmp_path, qsettings):
    panels = []

    def make(path=None, settings=None, backend_=None, parented=False):
        """A panel; ``parented``: a window/dock of the test will own (and delete) it."""
        take_dir = tmp_path / "takes"
        take_dir.mkdir(exist_ok=True)
        p = ScorePanel(backend=backend_ or backend, settings=settings or qsettings,
                       cache_dir=tmp_path / "cache", take_dir=take_dir)
        if not parented:
            qtbot.addWidget(p)
        p.resize(1000, 760)
        p.show()
        panels.append(p)
        if path is not None:
            assert p.open_path(path), p.last_error
        p.controls.steps.setValue(4)
        return p

    yield make
    for p in panels:
        assert p.shutdown(10_000), "background jobs did not stop"


def generate(qtbot, panel, button=None, timeout=GEN_TIMEOUT_MS) -> str:
    button = button or panel.controls.generate_button
    assert button.isEnabled()
    with qtbot.waitSignal(panel.generationEnded, timeout=timeout) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def record_progress(panel) -> list[tuple[str, int, int, float]]:
    seen: list = []
    panel.progressed.connect(lambda *a: seen.append(a))
    return seen


def take_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def strip_point(strip, frame, track_row=0) -> QPoint:
    _, rect = strip.track_rects()[track_row]
    return QPoint(int(round(strip.x_of(frame))), int(rect.center().y()))


# ------------------------------------------------------------------------------ tests

def test_open_timeline_draws_tracks_clips_markers_thumbnails(qtbot, make_panel, media):
    panel = make_panel(media["cut"])
    model = panel.strip.model
    assert [t.name for t in model.tracks] == ["V1", "A1"]
    assert [(c.name, c.start, c.end) for c in model.tracks[0].clips] == [("A", 0, 48), ("B", 48, 96)]
    assert [(m.name, m.start, m.duration) for m in model.markers] == [("chorus", 24, 48)]
    assert model.duration == 96 and model.rate == 24
    # the whole timeline is selected on opening, shown as timecode
    assert panel.session.selection_seconds == (0.0, 4.0)
    assert panel.selection_bar.in_edit.text() == "00:00:00:00"
    assert panel.selection_bar.out_edit.text() == "00:00:04:00"
    # one thumbnail per video clip, decoded in the background
    loader = panel.strip.thumbnails
    qtbot.waitUntil(lambda: loader.pending() == 0 and len(loader.cache) == 2, timeout=30_000)
    assert all(img is not None and img.height() == loader.height for img in loader.cache.values())
    assert "cut.otio" in panel.windowTitle()


def test_open_plain_video_is_one_track_one_clip(qtbot, make_panel, media):
    panel = make_panel(media["video"])
    model = panel.strip.model
    assert len(model.tracks) == 1 and len(model.tracks[0].clips) == 1
    assert model.tracks[0].clips[0].name == "a.mp4"
    a, b = panel.session.selection_seconds
    assert a == 0.0 and b == pytest.approx(2.0, abs=0.05)
    assert panel.controls.generate_button.isEnabled()


def test_strip_click_drag_handles_and_marker_set_the_selection(qtbot, make_panel, media):
    panel = make_panel(media["cut"])
    strip = panel.strip
    # click clip B
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip_point(strip, 72))
    assert panel.session.selection_seconds == (2.0, 4.0)
    # shift-click clip A adds it
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     strip_point(strip, 10))
    assert panel.session.selection_seconds == (0.0, 4.0)
    # drag a range across the track
    qtbot.mousePress(strip, Qt.MouseButton.LeftButton, pos=strip_point(strip, 12))
    qtbot.mouseMove(strip, strip_point(strip, 30))
    qtbot.mouseMove(strip, strip_point(strip, 36))
    qtbot.mouseRelease(strip, Qt.MouseButton.LeftButton, pos=strip_point(strip, 36))
    a, b = panel.session.selection_seconds
    assert a == pytest.approx(0.5, abs=1 / 24) and b == pytest.approx(1.5, abs=1 / 24)
    # drag the OUT handle to 3 s
    out_x = strip_point(strip, strip.sel_out)
    qtbot.mousePress(strip, Qt.MouseButton.LeftButton, pos=out_x)
    qtbot.mouseMove(strip, strip_point(strip, 60))
    qtbot.mouseMove(strip, strip_point(strip, 72))
    qtbot.mouseRelease(strip, Qt.MouseButton.LeftButton, pos=strip_point(strip, 72))
    a2, b2 = panel.session.selection_seconds
    assert a2 == a and b2 == pytest.approx(3.0, abs=1 / 24)
    # a click on the ruler moves the playhead only
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(int(strip.x_of(24)) + 20, 14))
    assert strip.playhead > 24 and panel.session.selection_seconds == (a2, b2)
    assert panel.selection_bar.playhead_label.text().startswith("playhead 00:00:01:")
    # the marker's flag selects the marker's range
    mk = QPoint(int(round(strip.x_of(24))), 18)
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=mk)
    assert panel.session.selection_seconds == (1.0, 3.0)
    assert panel.selection_bar.in_edit.text() == "00:00:01:00"


def test_drop_frame_timecode_display_and_typed_range(qtbot, make_panel, media):
    panel = make_panel(media["ntsc"])
    bar = panel.selection_bar
    assert bar.in_edit.text() == "01:00:00;00"         # 29.97 drop-frame: ';'
    assert "29.97" in bar.rate_label.text()
    bar.in_edit.setText("01:00:01;00")
    bar.out_edit.setText("01:00:02;15")
    qtbot.keyClick(bar.out_edit, Qt.Key.Key_Return)
    a, b = panel.session.selection_seconds
    assert a == pytest.approx(30 * 1001 / 30000) and b == pytest.approx(75 * 1001 / 30000)
    assert bar.in_edit.text() == "01:00:01;00" and bar.out_edit.text() == "01:00:02;15"
    # a bad time is a readable message, and the selection stays
    bar.in_edit.setText("01:00:01:99")
    qtbot.keyClick(bar.in_edit, Qt.Key.Key_Return)
    assert "not a valid timecode" in panel.status.text()
    assert panel.session.selection_seconds == (a, b)


def test_generate_shows_progress_then_new_seed_reuses_features(qtbot, make_panel, media,
                                                                backend, monkeypatch):
    import diffv2m.plugin.session as session_mod
    feature_runs = []
    real_vc = session_mod.video_conditions

    def counting(*a, **k):
        feature_runs.append(1)
        return real_vc(*a, **k)
    monkeypatch.setattr(session_mod, "video_conditions", counting)

    panel = make_panel(media["cut"])
    panel.controls.seed.setValue(7)
    seen = record_progress(panel)
    busy = []
    panel.busyChanged.connect(busy.append)
    assert generate(qtbot, panel) == "done"
    stages = [s for s, *_ in seen]
    assert {"features", "semantic", "rhythm", "sampling", "decoding audio"} <= set(stages)
    sampling = [d for s, d, t, _ in seen if s == "sampling"]
    assert sampling == sorted(sampling) and sampling[-1] == seen[stages.index("sampling")][2]
    assert any(left >= 0 for s, d, t, left in seen if s == "sampling" and d > 1)  # an estimate
    assert busy == [True, False]
    assert len(panel.takes.rows) == 1 and panel.takes.rows[0].record.seed == 7
    take = panel.session.takes[0]
    assert take.path.is_file() and take.path.name == "cut.take-7.wav"
    assert "1 unsaved take" in panel.windowTitle() and "*" in panel.windowTitle()
    assert feature_runs == [1]
    semantic_calls = backend.calls["encode_semantic"]

    # New seed: seed 8, only sampling + decoding run again
    seen.clear()
    assert generate(qtbot, panel, panel.controls.new_seed_button) == "done"
    assert panel.controls.seed.value() == 8
    stages2 = {s for s, *_ in seen}
    assert "features" not in stages2 and "semantic" not in stages2 and "rhythm" not in stages2
    assert {"sampling", "decoding audio"} <= stages2
    assert feature_runs == [1] and backend.calls["encode_semantic"] == semantic_calls
    assert [r.record.seed for r in panel.takes.rows] == [8, 7]
    assert "2 unsaved takes" in panel.windowTitle()
    # both takes differ (different seeds) but share the conditions
    t7, t8 = (r.take for r in panel.session.takes)
    assert t7.conditions is t8.conditions
    assert not np.array_equal(t7.audio, t8.audio)


def test_cancel_mid_sampling_stops_within_a_step_and_writes_nothing(qtbot, make_panel, media,
                                                                   backend, is_real):
    panel = make_panel(media["cut"])
    assert generate(qtbot, panel) == "done"       # a first take (features now cached)
    folder = panel.session.take_dir
    before = take_files(folder)
    panel.controls.steps.setValue(400 if is_real else 60)
    panel.controls.seed.setValue(123)
    clicked = []

    def on_progress(stage, done, total, left):
        if stage == "sampling" and done >= 2 and not clicked:
            backend.watch = panel.job
            clicked.append(done)
            qtbot.mouseClick(panel.controls.cancel_button, Qt.MouseButton.LeftButton)
    panel.progressed.connect(on_progress)
    assert generate(qtbot, panel) == "cancelled"
    assert clicked, "sampling never reported progress"
    # the step in flight finishes, no new one starts
    assert backend.after_cancel["denoise"] <= 1
    assert backend.after_cancel["decode"] == 0
    assert take_files(folder) == before                       # nothing new, no temp files
    assert not (folder / "cut.take-123.wav").exists()
    assert len(panel.session.takes) == 1 and len(panel.takes.rows) == 1
    assert "Cancelled" in panel.status.text() and "nothing was written" in panel.status.text()
    assert panel.controls.generate_button.isEnabled() and not panel.controls.cancel_button.isEnabled()


def test_ui_heartbeat_stays_under_100ms_during_generation(qtbot, make_panel, media):
    panel = make_panel(media["cut"])
    stamps: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start()
    try:
        assert generate(qtbot, panel) == "done"
    finally:
        timer.stop()
    assert len(stamps) >= 5, "the generation was too short to measure"
    gaps = np.diff(stamps)
    print(f"heartbeat: {len(stamps)} ticks, largest gap {gaps.max() * 1000:.1f} ms")
    assert gaps.max() < 0.100


def test_export_timeline_and_read_it_back(qtbot, make_panel, media, monkeypatch, tmp_path):
    panel = make_panel(media["cut"])
    panel.select_frames(24, 72)
    assert generate(qtbot, panel) == "done"
    assert generate(qtbot, panel, panel.controls.new_seed_button) == "done"
    kept = panel.takes.rows[-1]                    # the first take (seed 0)
    kept.keep_box.setChecked(True)
    asked = []
    out = tmp_path / "exports" / "cut.scored.otio"
    out.parent.mkdir()

    def fake_dialog(title, default, filt):
        asked.append(Path(default))
        return str(out)
    monkeypatch.setattr(panel, "_ask_save_path", fake_dialog)
    with qtbot.waitSignal(panel.exported, timeout=30_000):
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert asked == [media["cut"].with_name("cut.scored.otio")]   # default NAME.scored.otio
    tl = otio.adapters.read_from_file(str(out))
    names = [t.name for t in tl.tracks]
    assert "Diff-V2M score" in names
    score = next(t for t in tl.tracks if t.name == "Diff-V2M score")
    clips = list(score.find_clips())
    assert len(clips) == 1                          # only the kept take
    assert clips[0].range_in_parent().start_time.to_seconds() == pytest.approx(1.0)
    assert clips[0].duration().to_seconds() == pytest.approx(2.0)
    assert "take-0" in clips[0].media_reference.target_url
    # the kept take is exported, the other is not
    assert "1 unsaved take" in panel.windowTitle()
    assert kept.saved_label.text() == "exported"
    # the original timeline is never overwritten: a readable error, no crash
    assert panel.export_timeline(media["cut"]) is None
    assert "refusing to overwrite" in panel.status.text()


def test_export_preview_mp4_for_a_video(qtbot, make_panel, media, tmp_path):
    from diffv2m import media as dmedia
    panel = make_panel(media["video"])
    assert generate(qtbot, panel) == "done"
    out = tmp_path / "preview.mp4"
    rec = panel.session.takes[0]
    with qtbot.waitSignal(panel.busyChanged, timeout=60_000,
                          check_params_cb=lambda busy: busy is False):
        assert panel.export_preview(rec, out)
    assert out.is_file(), panel.last_error
    info = dmedia.probe(out)
    assert info.has_video and info.audio_streams


def test_export_preview_from_a_timeline_writes_or_explains(qtbot, make_panel, media, tmp_path):
    panel = make_panel(media["cut"])
    assert generate(qtbot, panel) == "done"
    out = tmp_path / "tl-preview.mp4"
    with qtbot.waitSignal(panel.busyChanged, timeout=60_000,
                          check_params_cb=lambda busy: busy is False):
        assert panel.export_preview(panel.session.takes[0], out)
    assert out.is_file() or panel.last_error      # never a crash
    assert not panel.is_busy()


class _Broken(SpyBackend):
    def denoise(self, *a, **k):
        raise RuntimeError("graph exploded")


def test_worker_errors_are_readable_messages_not_crashes(qtbot, make_panel, media, backend):
    panel = make_panel(media["cut"], backend_=_Broken(backend.inner))
    assert generate(qtbot, panel) == "failed"
    assert "RuntimeError: graph exploded" in panel.status.text()
    box = panel.message_box
    assert box is not None and box.isVisible() and not box.isModal()
    assert "graph exploded" in box.detailedText()
    assert not panel.is_busy() and panel.controls.generate_button.isEnabled()
    box.close()
    # a user mistake: a selection past the end
    assert not panel.select_frames(48, 500)
    assert "past the timeline's end" in panel.status.text()
    # a missing file
    assert not panel.open_path(media["dir"] / "nope.otio")
    assert "no such file" in panel.status.text()
    assert panel.session is not None            # the open session survives


def test_settings_persist_in_the_given_qsettings(qtbot, make_panel, media, qsettings, tmp_path):
    panel = make_panel(media["cut"])
    c = panel.controls
    assert c.settings().cfg_scale is None and c.cfg.text() == "model's"     # the model's own
    fresh_controls = type(c)()                       # (the fixture sets 4 steps, for speed)
    qtbot.addWidget(fresh_controls)
    assert fresh_controls.settings().steps is None and fresh_controls.steps.text() == "model's"
    c.seed.setValue(4242)
    c.steps.setValue(9)
    c.cfg.setValue(4.5)
    c.style.setCurrentIndex(2)
    c.sampler.setCurrentIndex(c.sampler.findData("euler"))
    assert c.settings().mode is None                 # the picture's, unless chosen
    c.mode.setCurrentIndex(c.mode.findData("minor"))
    qsettings.sync()
    assert Path(qsettings.fileName()).parent == tmp_path
    again = QSettings(qsettings.fileName(), QSettings.Format.IniFormat)
    fresh = ScorePanel(backend=panel.backend, settings=again)
    qtbot.addWidget(fresh)
    s = fresh.controls.settings()
    assert (s.seed, s.steps, s.cfg_scale, s.cls, s.sampler, s.mode) == (4242, 9, 4.5, 2, "euler",
                                                                         "minor")
    assert again.value("files/last_file") == str(media["cut"])


def test_play_button_plays_or_explains_without_audio_device(qtbot, make_panel, media):
    panel = make_panel(media["video"])
    assert generate(qtbot, panel) == "done"
    row = panel.takes.rows[0]
    qtbot.mouseClick(row.play_button, Qt.MouseButton.LeftButton)
    if panel.preview.has_output():
        assert panel.preview.current is row.record and row.play_button.text().startswith("■")
        qtbot.mouseClick(row.play_button, Qt.MouseButton.LeftButton)
        assert panel.preview.current is None
    else:
        assert "No audio output device" in panel.status.text()
        assert panel.preview.current is None and row.play_button.text().startswith("▶")


def test_discard_and_keep(qtbot, make_panel, media):
    panel = make_panel(media["video"])
    assert generate(qtbot, panel) == "done"
    assert generate(qtbot, panel, panel.controls.new_seed_button) == "done"
    rows = panel.takes.rows
    rows[0].keep_box.setChecked(True)
    assert panel.session.takes[1].kept
    first = rows[1].record
    qtbot.mouseClick(rows[1].discard_button, Qt.MouseButton.LeftButton)
    assert first not in panel.session.takes and len(panel.takes.rows) == 1
    assert first.path.exists()                     # discarding never deletes a file
    assert "1 unsaved take" in panel.windowTitle()


def test_waveform_draws_rhythm_and_cuts(qtbot, make_panel, media):
    panel = make_panel(media["cut"])
    assert generate(qtbot, panel) == "done"
    wf = panel.takes.rows[0].waveform
    assert wf.odf.shape == (4,)
    assert len(wf.cut_times) >= 1                  # the cut inside a.mp4 and the edit A|B
    img = wf.grab().toImage()
    orange = blue = red = 0
    for x in range(0, img.width(), 3):
        for y in range(0, img.height(), 2):
            c = img.pixelColor(x, y)
            orange += c.red() > 200 and 120 < c.green() < 200 and c.blue() < 90
            blue += c.blue() > 180 and c.red() < 140
            red += c.red() > 200 and c.green() < 90 and c.blue() < 90
    assert orange > 10 and blue > 50 and red > 5


def test_screenshots_before_and_after_a_generation(qtbot, make_panel, media):
    ARTIFACTS.mkdir(exist_ok=True)
    win = MainWindow(panel=make_panel(media["cut"], parented=True), confirm_close=False)
    qtbot.addWidget(win)
    win.resize(1000, 760)
    win.show()
    loader = win.panel.strip.thumbnails
    qtbot.waitUntil(lambda: loader.pending() == 0 and len(loader.cache) == 2, timeout=30_000)
    before = ARTIFACTS / "panel_before.png"
    assert win.grab().save(str(before))
    win.panel.select_frames(12, 84)
    assert generate(qtbot, win.panel) == "done"
    row = win.panel.takes.rows[0]
    qtbot.waitUntil(lambda: row.waveform.isVisible() and row.waveform.height() >= 60)
    after = ARTIFACTS / "panel_after.png"
    assert win.grab().save(str(after))
    assert before.stat().st_size > 5000 and after.stat().st_size > 5000
    assert win.grab().toImage() != QImage(str(before))
    assert "unsaved" in win.windowTitle()


def test_main_window_drop_opens_the_file(qtbot, make_panel, media):
    win = MainWindow(panel=make_panel(parented=True), confirm_close=False)
    qtbot.addWidget(win)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(media["video"]))])
    assert MainWindow.dropped_path(mime) == media["video"]
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    assert win.panel.session is not None and win.panel.session.path == media["video"]
    assert win.windowTitle().startswith("a.mp4")


# ------------------------------------------------------------------------------ picture + take

def _shown_frame_index(player) -> int | None:
    """The frame index drawn into the picture (mediagen codes it in the pixels) as shown now."""
    from mediagen import read_frame_index
    frame = player.video.videoSink().videoFrame()
    if not frame.isValid():
        return None
    img = frame.toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 3]
    return read_frame_index(arr.reshape(h, w, 3).copy())


@pytest.fixture
def picture_clip(tmp_path):
    return make_video(tmp_path / "picture.mp4", seconds=7.0, fps=Fraction(24), size=(192, 108),
                      cut_times=(2.0, 4.5),
                      colours=((200, 60, 40), (40, 90, 210), (230, 200, 40))).path


def test_picture_plays_with_the_take_in_sync_and_ab_keeps_the_playhead(qtbot, make_panel,
                                                                       picture_clip):
    """QtMultimedia (FFmpeg backend, offscreen, no audio device: the audio player's clock still
    runs) plays the selection's picture beside the strip while the take plays from the
    selection's start; over 3 s picture and take stay within one frame, the frame on screen is
    the one the take's position says, and A/B swaps the take under the same playhead."""
    panel = make_panel(picture_clip)
    fps = 24.0
    assert panel.select_frames(24, 144)                     # 1.0 s - 6.0 s
    assert generate(qtbot, panel) == "done"
    assert generate(qtbot, panel, panel.controls.new_seed_button) == "done"
    a, b = panel.session.takes
    pic = panel.picture
    assert pic.picture_path == picture_clip and pic.start == pytest.approx(1.0)
    assert pic.play_button.isEnabled() and pic.ab_button.isEnabled()
    with qtbot.waitSignal(pic.synced, timeout=15_000):
        qtbot.mouseClick(pic.play_button, Qt.MouseButton.LeftButton)
    assert pic.current is b                                 # the newest take first
    drifts, frame_errors, t0 = [], [], time.monotonic()
    switched_at = None
    while time.monotonic() - t0 < 3.0:
        qtbot.wait(20)
        drifts.append(pic.drift())
        shown = _shown_frame_index(pic)
        if shown is not None:
            frame_errors.append(shown - (pic.start + pic.audio_seconds()) * fps)
        if switched_at is None and time.monotonic() - t0 > 1.5:
            before, t_switch = pic.playhead(), time.monotonic()
            with qtbot.waitSignal(pic.synced, timeout=10_000):
                qtbot.mouseClick(pic.ab_button, Qt.MouseButton.LeftButton)
            switched_at = (before, pic.started_at, pic.playhead(), time.monotonic() - t_switch)
            assert pic.current is a and pic.aplayer.source().toLocalFile() == str(a.path)
    drifts = np.abs(np.array(drifts))
    assert len(drifts) > 100 and drifts.max() <= 1.0 / fps, drifts.max()
    # the frame on screen: within one frame of the take's position (plus the frame being shown)
    errs = np.array(frame_errors)
    assert len(errs) > 50 and np.abs(errs).max() <= 2.0, np.abs(errs).max()
    assert np.abs(errs).mean() <= 1.0
    before, restart, after, took = switched_at
    assert abs(restart - before) <= 1.0 / fps           # A/B went on from the same playhead
    assert before - 1.0 / fps <= after <= before + took + 1.0 / fps
    assert 2.6 <= pic.playhead() <= 3.6                    # it really played for 3 s
    assert pic.resyncs <= 2
    # the strip's playhead follows the picture
    assert abs(panel.strip.playhead - (24 + pic.playhead() * fps)) <= 3
    ARTIFACTS.mkdir(exist_ok=True)
    shot = panel.grab()
    shot.save(str(ARTIFACTS / "panel-picture.png"))
    if os.environ.get("DIFFV2M_DOCS_SCREENSHOT"):
        shot.save(os.environ["DIFFV2M_DOCS_SCREENSHOT"])
    qtbot.mouseClick(pic.play_button, Qt.MouseButton.LeftButton)
    assert pic.current is None


def test_timeline_picture_is_rendered_after_the_first_take_and_plays(qtbot, make_panel, media):
    """A timeline's selection has no single file: its picture (clips A then B, as the viewer
    sees them) is rendered once in the background, then plays with the take."""
    from mediagen import frame_colour
    panel = make_panel(media["cut"])
    pic = panel.picture
    assert not pic.play_button.isEnabled()
    assert "after the first take" in pic.label.text()
    with qtbot.waitSignal(pic.pictureReady, timeout=GEN_TIMEOUT_MS):
        assert generate(qtbot, panel) == "done"
    assert pic.picture_path is not None and pic.start == 0.0
    assert pic.duration == pytest.approx(panel.session.selection_seconds[1]
                                         - panel.session.selection_seconds[0])
    with qtbot.waitSignal(pic.synced, timeout=15_000):
        qtbot.mouseClick(pic.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pic.playhead() > 2.3, timeout=10_000)   # into clip B (2 s on)
    img = pic.video.image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 3]
    assert np.abs(frame_colour(arr.reshape(h, w, 3)) - (30, 200, 60)).max() < 40   # B's green
    assert abs(pic.drift()) <= 1.0 / 24
    pic.stop()


def test_panel_docks_in_a_host_window(qtbot, make_panel, media):
    host = QMainWindow()
    qtbot.addWidget(host)
    dock = QDockWidget("Diff-V2M score", host)
    panel = make_panel(parented=True)
    dock.setWidget(panel)
    panel.windowTitleChanged.connect(dock.setWindowTitle)
    host.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    host.show()
    assert panel.open_path(media["cut"])
    assert dock.windowTitle().startswith("cut.otio")
    assert dock.widget() is panel


def test_panel_loads_its_backend_in_the_background(qtbot, qsettings, media, tmp_path):
    loaded = []

    def loader():
        loaded.append(1)
        return ToyBackend()
    panel = ScorePanel(settings=qsettings, backend_loader=loader, take_dir=tmp_path,
                       cache_dir=tmp_path / "cache")
    qtbot.addWidget(panel)
    assert panel.open_path(media["video"])          # queued until the model is there
    qtbot.waitUntil(lambda: panel.session is not None, timeout=30_000)
    assert loaded == [1] and panel.controls.backend_label.text() == "Backend: toy-numpy (test double)"
    panel.shutdown(5000)


def test_backend_label_names_the_provider():
    from diffv2m.plugin.panel.controls import backend_kind
    assert backend_kind("onnxruntime:TensorrtExecutionProvider") == "TensorRT"
    assert backend_kind("onnxruntime:CUDAExecutionProvider") == "CUDA"
    assert backend_kind("onnxruntime:CPUExecutionProvider") == "CPU"


def test_app_main_screenshot(qtbot, media, tmp_path, monkeypatch):
    import diffv2m.runtime.ort as ort
    from diffv2m.plugin.panel import app
    monkeypatch.setattr(ort, "load_runtime", lambda *a, **k: ToyBackend())
    png = tmp_path / "app.png"
    rc = app.main([str(media["video"]), "--settings", str(tmp_path / "s.ini"),
                   "--take-dir", str(tmp_path), "--screenshot", str(png)])
    assert rc == 0 and png.stat().st_size > 1000


def test_panel_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import diffv2m.plugin.panel.app, diffv2m.plugin.panel.panel, "
            "diffv2m.plugin.panel.window\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_pyside_keeps_refcounts_of_none_and_true(qtbot):
    """PySide6 6.12.0 on CPython 3.11 drops a reference to None on every void call and to True
    on every Signal.emit; long sessions then abort ("deallocating None").  Use another
    PySide6 (6.11.3 is sound) — see plugin/panel/app.py's warning."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class S(QObject):
        ping = Signal()
    s, label = S(), QLabel()
    s.ping.connect(lambda: None)
    n, t = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        s.ping.emit()
        label.setText("x")
    assert sys.getrefcount(None) - n > -100 and sys.getrefcount(True) - t > -100
