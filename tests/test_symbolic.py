"""MGEval-style symbolic measures: known feature values, and the model/random/held-out order."""
from __future__ import annotations

import numpy as np
import pytest

from diffv2m.evaluate import symbolic
from diffv2m.score.events import Ensemble, Note, Score
from test_score_render import known_score


def test_features_of_a_known_score():
    notes = [Note("melody", 60, 0.0, 0.5, 90), Note("melody", 64, 0.5, 1.0, 90),
             Note("bass", 48, 0.0, 1.0, 80), Note("drums", 36, 0.0, 0.1, 100)]
    f = symbolic.features(Score(notes, Ensemble("x"), 2.0))
    assert f["pitch_class_histogram"][0] == pytest.approx(2 / 3)     # C, C (drums left out)
    assert f["pitch_class_histogram"][4] == pytest.approx(1 / 3)
    assert f["pitch_range"][0] == 16 and f["used_pitches"][0] == 3
    assert f["mean_ioi"][0] == pytest.approx(0.5)
    assert f["polyphony"][0] == pytest.approx(2.0)                   # 2 sounding at 0 and 0.5
    t = f["pitch_class_transitions"].reshape(12, 12)
    assert t[0, 4] == pytest.approx(1.0) and t.sum() == pytest.approx(1.0)
    assert f["note_length_histogram"].sum() == pytest.approx(1.0)
    empty = symbolic.features(Score([], Ensemble("x"), 1.0))
    assert all(not v.any() for v in empty.values())


def test_overlap_identical_and_disjoint_samples():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    assert symbolic.overlap(a, a)["oa"] == pytest.approx(1.0, abs=1e-6)
    assert symbolic.overlap(a, rng.normal(0, 1, 400))["oa"] > 0.85
    far = symbolic.overlap(a, a + 20)
    assert far["oa"] < 0.01 and far["kl"] > 1


def test_same_style_scores_beat_random_notes():
    ref = [known_score(s, seconds=8.0) for s in range(10)]
    gen = [known_score(100 + s, seconds=8.0) for s in range(10)]
    rep = symbolic.mgeval_report(gen, ref, seed=0)
    model, rand, held = rep["model"], rep["random_notes"], rep["held_out_halves"]
    assert set(model["features"]) == set(symbolic.FEATURES)
    assert model["mean_oa"] > 0.6
    assert rand["mean_oa"] < model["mean_oa"] - 0.2
    assert held["mean_oa"] > 0.5 and held["n_generated"] == 5
    assert "skipped" in symbolic.compare(gen, ref[:1])


def test_evaluate_score_row_mode_density_and_class_summary(tmp_path):
    from diffv2m.evaluate import cli
    c_major = [Note("melody", p, 0.5 * i, 0.5 * i + 0.45, 90)
               for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 67])]
    a_minor = [Note("melody", p, 0.25 * i, 0.25 * i + 0.2, 90)
               for i, p in enumerate([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 64] * 2)]
    fast = Score(a_minor + [Note("drums", 36, 0.0, 0.1, 100)], Ensemble("x"), 6.0, 140.0)
    slow = Score(c_major, Ensemble("x"), 6.0, 80.0)
    r_slow = cli.score_row(slow, cli.Clip("a", "1", tmp_path / "a.wav", mode="major", cls=0))
    r_fast = cli.score_row(fast, cli.Clip("b", "1", tmp_path / "b.wav", mode="major", cls=2))
    assert r_slow["mode"] == "major" and r_slow["mode_match"] is True
    assert r_fast["mode"] == "minor" and r_fast["mode_match"] is False
    assert r_slow["note_density"] == pytest.approx(2.0) and r_fast["note_density"] == pytest.approx(4.0)
    s = cli._summary([{"score": r_slow}, {"score": r_fast}])["score"]
    assert s["mode_match_rate"] == 0.5 and s["mode_compared"] == 2
    assert s["by_class"]["0"]["tempo_bpm"] == 80.0 and s["by_class"]["2"]["note_density"] == 4.0


def test_evaluate_between_seeds_note_f1(tmp_path):
    pytest.importorskip("mir_eval")
    from diffv2m.evaluate import cli
    a, b, c = known_score(1), known_score(1), known_score(2)
    rows = [{"name": "x", "midi": "x.take-1.mid"}, {"name": "x", "midi": "x.take-2.mid"},
            {"name": "y", "midi": "y.take-1.mid"}, {"name": "y", "midi": "y.take-2.mid"},
            {"name": "z", "midi": None}]
    same = cli.between_seeds(rows[:2], [a, b])
    assert same["note_f1"] == pytest.approx(1.0) and same["pairs"] == 1
    mixed = cli.between_seeds(rows, [a, b, a, c])
    assert mixed["pairs"] == 2 and mixed["clips"] == 2 and mixed["note_f1"] < 0.8
    assert cli.between_seeds(rows[4:], []) is None
