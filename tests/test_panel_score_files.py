"""The panel's "Also write MIDI" / "Also write stems": real widgets offscreen (pytest-qt), the
real runtime of the embedded score model; the files appear with the timeline, which holds the
stems as muted tracks aligned with the take."""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from test_panel import (backend, generate, is_real, make_panel, media, qsettings,  # noqa: E402,F401
                        real_backend)

from diffv2m import media as media_io  # noqa: E402
from diffv2m.plugin.timeline_writer import stem_track_name  # noqa: E402
from diffv2m.score.events import TRACKS  # noqa: E402
from diffv2m.score.midi import read_midi  # noqa: E402


def _export(qtbot, panel, monkeypatch, out: Path) -> None:
    monkeypatch.setattr(panel, "_ask_save_path", lambda *a: str(out))
    with qtbot.waitSignal(panel.exported, timeout=60_000):
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)


def test_app_main_leaves_no_quit_behind(qtbot, media, tmp_path, monkeypatch):
    """``diffv2m panel --screenshot`` quits twice (its window's close and its own quit). The
    second Quit must not end a later event loop: this module's next tests, run after it in this
    process, wait for a take and an export (without the fix in ``app.main`` the export test's
    wait ended at once)."""
    import diffv2m.runtime.ort as ort
    from diffv2m.plugin.panel import app
    from panel_backend import ToyBackend
    monkeypatch.setattr(ort, "load_runtime", lambda *a, **k: ToyBackend())
    png = tmp_path / "a.png"
    assert app.main([str(media["video"]), "--settings", str(tmp_path / "s.ini"),
                     "--take-dir", str(tmp_path), "--screenshot", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_checkboxes_follow_the_model_family(qtbot, make_panel, media):
    from panel_backend import ToyBackend
    toy = make_panel(media["cut"], backend_=ToyBackend())      # an audio-family model
    assert not toy.export_options.midi_box.isEnabled()
    assert "score-family" in toy.export_options.stems_box.toolTip()
    assert toy.export_options.paths("/x/cut.scored.otio") == (None, None)
    toy.controls.mode.setCurrentIndex(toy.controls.mode.findData("minor"))
    assert not toy.controls.mode.isEnabled() and toy.controls.settings().mode is None


def test_export_writes_midi_and_stems_with_the_timeline(qtbot, make_panel, media, is_real,
                                                        monkeypatch, tmp_path):
    if not is_real:
        pytest.skip("needs the embedded score model's graphs (the test double makes audio)")
    panel = make_panel(media["cut"])
    panel.controls.steps.setValue(0)                # "model's": the score model's own 15
    opts = panel.export_options
    assert opts.midi_box.isEnabled() and opts.stems_box.isEnabled()
    from diffv2m.score import render                # the backend's arrival preloads the font
    panel.font_loading.join(30)
    assert any(rate == 48000 for _, rate in render._SYNTHS)
    panel.select_frames(24, 72)
    assert generate(qtbot, panel) == "done"
    for box in (opts.midi_box, opts.stems_box):
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert opts.midi_box.isChecked() and opts.stems_box.isChecked()
    out = tmp_path / "exports" / "cut.scored.otio"
    out.parent.mkdir()
    _export(qtbot, panel, monkeypatch, out)
    mid, stems = out.with_name("cut.scored.mid"), out.with_name("cut.scored-stems")
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [out.name, mid.name, stems.name])
    record = panel.session.takes[0]
    # the panel's default guidance is the model's own, recorded as the number it used
    assert record.take.settings.cfg_scale == panel.backend.config.default_cfg_scale == 2.0
    assert record.take.settings.steps == panel.backend.config.default_steps == 15  # likewise
    assert len(read_midi(mid).notes) == len(record.take.score.notes) > 0
    assert record.take.score.key in panel.takes.rows[0].details.text()     # "A minor"
    mix = media_io.read_audio(record.path, record.take.sample_rate, mono=False)
    parts = [media_io.read_audio(stems / f"{t}.wav", record.take.sample_rate, mono=False)
             for t in TRACKS]
    assert all(p.shape == mix.shape for p in parts)
    assert abs(sum(parts) - mix).max() < 2e-3
    tl = otio.adapters.read_from_file(str(out))
    by_name = {t.name: t for t in tl.tracks}
    assert by_name["Diff-V2M score"].enabled
    for t in TRACKS:
        track = by_name[stem_track_name(t)]
        (c,) = list(track.find_clips())
        assert not track.enabled and track.kind == otio.schema.TrackKind.Audio
        assert c.range_in_parent().start_time.to_seconds() == pytest.approx(1.0)
        assert c.duration().to_seconds() == pytest.approx(2.0)
        assert c.media_reference.target_url.endswith(f"cut.scored-stems/{t}.wav")
    assert "cut.scored.mid" in panel.status.text()
    # exporting again over the same name replaces the earlier export's stems
    before = (stems / "melody.wav").stat().st_ino
    _export(qtbot, panel, monkeypatch, out)
    assert (stems / "melody.wav").is_file() and (stems / "melody.wav").stat().st_ino != before
    # the checkboxes persist
    assert str(panel.qsettings.value("export/stems")).lower() == "true"


def test_a_stems_folder_holding_other_files_is_refused_and_nothing_written(
        qtbot, make_panel, media, is_real, monkeypatch, tmp_path):
    if not is_real:
        pytest.skip("needs the embedded score model's graphs")
    panel = make_panel(media["cut"])
    panel.select_frames(0, 24)
    assert generate(qtbot, panel) == "done"
    panel.export_options.stems_box.setChecked(True)
    panel.export_options.midi_box.setChecked(True)
    out = tmp_path / "cut.scored.otio"
    (tmp_path / "cut.scored-stems").mkdir()
    (tmp_path / "cut.scored-stems" / "mine.txt").write_text("keep")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert panel.export_timeline(out) is None
    assert "not empty" in panel.status.text()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before

