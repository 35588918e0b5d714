"""The one note-F1: notes and note arrays are judged alike (mir_eval's matching)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mir_eval")

from diffv2m.evaluate.note_f1 import intervals_f1, note_f1  # noqa: E402
from diffv2m.evaluate.transcription import score_notes  # noqa: E402
from diffv2m.score.events import Note  # noqa: E402


def _notes(rng, n):
    out = []
    for _ in range(n):
        start = float(rng.uniform(0, 4))
        out.append(Note(str(rng.choice(["melody", "bass", "drums"])), int(rng.integers(58, 63)),
                        start, start + float(rng.uniform(0.05, 0.5)), 80))
    return out


def test_notes_and_arrays_give_the_same_scores():
    rng = np.random.default_rng(1)
    for _ in range(40):
        ref = _notes(rng, int(rng.integers(1, 20)))
        est = [Note(n.track, n.pitch, max(0.0, n.start + float(rng.normal(0, 0.04))), n.end, 80)
               for n in ref if rng.random() < 0.8] + _notes(rng, int(rng.integers(0, 4)))
        if not score_notes(est)[1].size or not score_notes(ref)[1].size:
            continue
        a = note_f1(est, ref, pitched_only=True)
        b = intervals_f1(*score_notes(ref), *score_notes(est))
        assert (a["precision"], a["recall"], a["f1"]) == (b["precision"], b["recall"], b["f1"])
        assert (a["estimated"], a["reference"]) == (b["n_estimate"], b["n_reference"])


def test_matching_is_one_to_one_and_maximal():
    # two estimates near one reference onset: one match; a chain where greedy-by-distance
    # would lose one: both found
    ref = [Note("melody", 60, 0.00, 0.2, 80), Note("melody", 60, 0.08, 0.3, 80)]
    est = [Note("melody", 60, 0.04, 0.2, 80), Note("melody", 60, 0.12, 0.3, 80)]
    assert note_f1(est, ref, onset_tol=0.05)["matched"] == 2.0
    assert note_f1(est[:1] * 2, ref[:1], onset_tol=0.05)["matched"] == 1.0
    assert note_f1(est, ref, by_track=True)["f1"] == 1.0
    other = [Note("bass", n.pitch, n.start, n.end, 80) for n in est]
    assert note_f1(other, ref, by_track=True)["f1"] == 0.0 and note_f1(other, ref)["f1"] == 1.0
