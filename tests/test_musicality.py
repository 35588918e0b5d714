"""The basic-pitch musicality judge (real ONNX Runtime session on the wheel's nmp.onnx)."""
from __future__ import annotations

import numpy as np
import pytest

from diffv2m.evaluate import transcription as T
from diffv2m.evaluate.note_f1 import intervals_f1
from diffv2m.score.events import Note

judge = pytest.mark.skipif(T.available() is not None, reason=str(T.available()))


def test_confident_note_fraction_counts_frames_over_threshold():
    p = np.zeros((10, 88), np.float32)
    p[:3, 40] = 0.9
    p[3:5, 10] = 0.5                  # not above 0.5
    assert T.confident_note_fraction(p) == pytest.approx(0.3)
    assert T.confident_note_fraction(np.zeros((0, 88))) == 0.0


def test_note_f1_onset_tolerance_and_pitch():
    mir_eval = pytest.importorskip("mir_eval")  # noqa: F841
    ref = [Note("melody", 60 + i, 0.5 * i, 0.5 * i + 0.3, 90) for i in range(8)]
    ri, rp = T.score_notes(ref)
    assert intervals_f1(ri, rp, ri, rp)["f1"] == pytest.approx(1.0)
    assert intervals_f1(ri, rp, ri + 0.03, rp)["f1"] == pytest.approx(1.0)      # within 50 ms
    assert intervals_f1(ri, rp, ri + 0.08, rp)["f1"] == pytest.approx(0.0)      # outside
    assert intervals_f1(ri, rp, ri, rp + 1)["f1"] == pytest.approx(0.0)         # wrong pitch
    half = intervals_f1(ri, rp, ri[:4], rp[:4])
    assert half["precision"] == pytest.approx(1.0) and half["recall"] == pytest.approx(0.5)
    assert intervals_f1(ri, rp, np.zeros((0, 2)), [])["f1"] == 0.0
    assert intervals_f1(np.zeros((0, 2)), [], np.zeros((0, 2)), [])["f1"] is None
    drums = ref + [Note("drums", 36, 0.0, 0.1, 100)]
    assert len(T.score_notes(drums)[1]) == 8 and len(T.score_notes(drums, with_drums=True)[1]) == 9


@judge
def test_judge_on_a_rendered_known_score_vs_silence_and_noise():
    from test_score_render import known_score
    from diffv2m.score import render
    try:
        render.find_soundfont()
    except Exception as exc:                                 # no SoundFont: nothing to render
        pytest.skip(str(exc))
    score = known_score(7, seconds=6.0)
    y = render.render_score(score, sample_rate=48000)
    tr = T.transcribe(y, 48000)
    assert tr.note_posteriors.shape[1] == 88 and tr.note_posteriors.shape[0] > 400
    assert tr.confident_note_fraction > 0.6
    assert T.render_round_trip(score.notes, tr)["f1"] > 0.6
    # a round trip against the wrong score is poor
    other = known_score(99, seconds=6.0)
    assert T.render_round_trip(other.notes, tr)["f1"] < 0.4
    rng = np.random.default_rng(0)
    for z in (np.zeros(6 * 22050, np.float32),
              (0.1 * rng.standard_normal(6 * 22050)).astype(np.float32)):
        tz = T.transcribe(z, 22050)
        assert tz.confident_note_fraction < 0.1
        assert T.render_round_trip(score.notes, tz)["f1"] < 0.2
    # transcription vs transcription (the autoencoder round-trip form): itself gives 1
    assert T.transcription_f1(tr, tr)["f1"] == pytest.approx(1.0)


@judge
def test_evaluate_cli_reports_musicality_and_symbolic_for_score_takes(tmp_path):
    """Score-family takes (WAV + MIDI sidecar) get the figures; references give the
    reference fraction and the held-out scores for the symbolic measures."""
    import json

    import mediagen
    from diffv2m.evaluate import cli
    from diffv2m.score import midi, render
    from test_score_render import known_score
    try:
        render.find_soundfont()
    except Exception as exc:
        pytest.skip(str(exc))
    gen, ref, vid = tmp_path / "gen", tmp_path / "ref", tmp_path / "vid"
    for d in (gen, ref, vid):
        d.mkdir()
    for i in range(3):
        take, truth = known_score(10 + i, seconds=4.0), known_score(20 + i, seconds=4.0)
        mediagen.write_wav(gen / f"c{i}.take-1.wav", render.render_score(take, sample_rate=22050), 22050)
        midi.write_midi(take, gen / f"c{i}.take-1.mid")
        mediagen.write_wav(ref / f"c{i}.wav", render.render_score(truth, sample_rate=22050), 22050)
        midi.write_midi(truth, ref / f"c{i}.mid")
        mediagen.make_video(vid / f"c{i}.mp4", seconds=4.0, fps=24, size=(64, 48), cut_times=(1.0, 2.5))
    out = tmp_path / "report.json"
    assert cli.main(["--generated", str(gen), "--reference", str(ref), "--videos", str(vid),
                     "-o", str(out), "--shifts", "20", "--recon", "-q",
                     "--html", str(tmp_path / "r.html")]) == 0
    rep = json.loads(out.read_text())
    mu = rep["summary"]["musicality"]
    assert mu["takes"] == 3 and mu["takes_with_midi"] == 3
    assert mu["confident_note_fraction"] > 0.6 and mu["reference_confident_note_fraction"] > 0.6
    assert mu["render_round_trip_note_f1"] > 0.6
    assert mu["reference_vs_take_note_f1"] < 0.5          # different scores: a poor round trip
    sym = rep["symbolic"]
    assert sym["model"]["n_reference"] == 3 and sym["model"]["mean_oa"] is not None
    assert sym["random_notes"]["mean_oa"] < sym["model"]["mean_oa"]
    assert "Symbolic measures" in (tmp_path / "r.html").read_text()
    # audio-family takes (no MIDI) get no musicality section unless asked for
    for p in gen.glob("*.mid"):
        p.unlink()
    assert cli.main(["--generated", str(gen), "--videos", str(vid), "-o", str(out),
                     "--shifts", "20", "-q"]) == 0
    rep = json.loads(out.read_text())
    assert "musicality" not in rep["summary"] and "symbolic" not in rep


def test_musicality_without_basic_pitch_is_one_line_or_a_note(tmp_path, monkeypatch):
    import argparse

    from diffv2m.errors import UserError
    from diffv2m.evaluate import cli
    monkeypatch.setattr(T, "available", lambda: "basic-pitch transcriber not available (x); "
                                                f"install: {T.INSTALL_HINT}")
    take = cli.Clip("c", "1", tmp_path / "c.take-1.wav", midi=tmp_path / "c.take-1.mid")
    with pytest.raises(UserError) as exc:
        cli.musicality_judge(argparse.Namespace(musicality=True), [take])
    assert "pip install --no-deps basic-pitch" in str(exc.value) and "\n" not in str(exc.value)
    judge, note = cli.musicality_judge(argparse.Namespace(musicality=False), [take])
    assert judge is None and note.startswith("musicality metrics skipped")
    assert cli.musicality_judge(argparse.Namespace(musicality=False),
                                [cli.Clip("c", None, tmp_path / "c.wav")]) == (None, None)
