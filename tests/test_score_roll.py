"""The score family's data: corpus notes -> piano roll -> notes (exact), and the decoding rule."""
from __future__ import annotations

import numpy as np
import pytest

from diffv2m.data import music, scores
from diffv2m.evaluate.note_f1 import note_f1
from diffv2m.score.events import TRACKS, Ensemble, Note, Score
from diffv2m.score.roll import (FRAME, ONSET, VELOCITY, end_frame, notes_to_roll, onset_frame,
                                roll_to_notes)

RATE = 24.0


def arranged_piece(name: str, seed: int, quarters: float = 24):
    """``(piece, arrangement)``: a real corpus piece as the builder arranges ``quarters``
    quarter notes of it from its first downbeat (a tempo by seed); skips without the piece."""
    try:
        piece = music.load_piece(name)
    except Exception as exc:                        # pragma: no cover - corpus layout
        pytest.skip(f"{name}: {exc}")
    rng = np.random.default_rng(seed)
    us = music.choose_tempo(piece, rng)
    span = (piece.first_downbeat_ql, min(piece.length_ql, piece.first_downbeat_ql + quarters))
    return piece, music.arrange(piece, rng, span, us)


@pytest.fixture(scope="module")
def corpus_notes():
    """The exact notes of two real corpus pieces (a 4-voice chorale, a fiddle tune) as the
    builder arranges them, drums included."""
    out = []
    for name, seed in (("bach/bwv10.7.mxl", 3), ("ryansMammoth/7thRegimentReel.abc", 5)):
        piece, arr = arranged_piece(name, seed)
        arr.drums = "drive"
        out.append((piece, arr, scores.arrangement_notes(piece, arr)))
    return out


def _key(n):
    return (n.track, n.pitch, onset_frame(n.start, RATE))


def test_round_trip_is_exact_on_corpus_notes(corpus_notes):
    for piece, arr, notes in corpus_notes:
        seconds = max(n.end for n in notes) + 0.5
        frames = int(np.ceil(seconds * RATE))
        got = roll_to_notes(notes_to_roll(notes, frames, rate=RATE), rate=RATE)
        want: dict = {}
        for n in notes:                                 # what a roll can hold (module doc)
            k = _key(n)
            e = end_frame(n.start, n.end, RATE)
            if k in want:
                want[k] = (max(want[k][0], e), max(want[k][1], n.velocity))
            else:
                want[k] = (e, n.velocity)
        assert {_key(n) for n in got} == set(want)      # every onset, once
        assert len(got) == len(want)
        by_pitch: dict = {}
        for k in sorted(want, key=lambda k: k[2]):
            by_pitch.setdefault(k[:2], []).append(k[2])
        inexact = {t: 0 for t in TRACKS}
        for n in got:
            k = _key(n)
            end, vel = want[k]
            later = [f for f in by_pitch[k[:2]] if f > k[2]]
            cut = min([end] + later[:1])                 # a later onset ends a note
            assert n.velocity == vel
            assert n.start == k[2] / RATE
            inexact[n.track] += round(n.end * RATE) != cut
        # single-voice tracks are exact; the accompaniment (inner voices merged) may have a
        # unison whose sounding frames outlast the later note (module doc)
        assert inexact["melody"] == inexact["bass"] == inexact["drums"] == 0, inexact
        assert inexact["accompaniment"] <= 0.02 * len(got), inexact
        assert {n.track for n in got} >= {"melody", "drums"}
        tracks = {n.track for n in notes}
        if piece.n_parts >= 3:
            assert tracks == set(TRACKS)


def test_repeated_notes_stay_separate():
    # three repeated notes back to back (the next starts in the frame the last one ends)
    notes = [Note("melody", 60, 0.0, 0.25, 90), Note("melody", 60, 0.25, 0.5, 70),
             Note("melody", 60, 0.5, 1.0, 50), Note("bass", 40, 0.0, 1.0, 80)]
    roll = notes_to_roll(notes, 30, rate=RATE)
    assert roll[0, FRAME, 60, :24].all()               # one unbroken run of sounding frames
    got = roll_to_notes(roll, rate=RATE)
    mel = [n for n in got if n.track == "melody"]
    assert [(n.start, n.end, n.velocity) for n in mel] == [(0.0, 0.25, 90), (0.25, 0.5, 70),
                                                          (0.5, 1.0, 50)]
    # a frame-only roll (no onset channel) would have merged them into one note
    merged = roll.copy()
    merged[0, ONSET, 60] = 0
    merged[0, ONSET, 60, 0] = 1
    assert len([n for n in roll_to_notes(merged, rate=RATE) if n.track == "melody"]) == 1


def test_decoding_rule_on_probabilities():
    P = 128
    prob = np.zeros((4, 3, P, 20), np.float32)
    # an onset smeared over two frames -> one note at the peak; sustain until frame < 0.3;
    # a soft bump of the onset inside the held note (< 0.7) does not strike it again
    prob[0, ONSET, 64, 3:5] = [0.6, 0.9]
    prob[0, ONSET, 64, 6] = 0.6
    prob[0, FRAME, 64, 3:10] = [0.9, 0.9, 0.8, 0.7, 0.6, 0.31, 0.29]
    prob[0, VELOCITY, 64, 4] = 0.5
    # below threshold: nothing
    prob[1, ONSET, 50, 2] = 0.49
    prob[1, FRAME, 50, 2:8] = 1.0
    # a drum hit without sustain lasts one frame
    prob[3, ONSET, 36, 7] = 0.8
    prob[3, VELOCITY, 36, 7] = 1.0
    got = roll_to_notes(prob, rate=RATE, pitch_low=0)
    assert got == [Note("melody", 64, 4 / RATE, 9 / RATE, 64),
                   Note("drums", 36, 7 / RATE, 8 / RATE, 127)]
    # thresholds are parameters of the rule
    assert len(roll_to_notes(prob, rate=RATE, onset_threshold=0.4)) == 3
    split = roll_to_notes(prob, rate=RATE, reonset_threshold=0.55)
    assert [(n.pitch, n.start * RATE, n.end * RATE) for n in split if n.track == "melody"] == \
        [(64, 4, 6), (64, 6, 9)]
    # a re-onset above 0.7 strikes the held note again
    prob[0, ONSET, 64, 6] = 0.75
    assert len([n for n in roll_to_notes(prob, rate=RATE) if n.track == "melody"]) == 2
    # pitch_low shifts pitches of a cropped roll
    assert roll_to_notes(prob[:, :, 24:], rate=RATE, pitch_low=24)[0].pitch == 64


def test_clip_sidecar_round_trip(tmp_path, corpus_notes):
    piece, arr, notes = corpus_notes[0]
    ens = scores.ensemble_of(piece, arr)
    assert ens.programs["melody"] == arr.programs[0] and ens.programs["bass"] == arr.programs[-1]
    start = round(notes[10].start, 6)
    sc = scores.clip_score(notes, ens, start, 4.0, arr.tempo)
    assert sc.notes and all(0 <= n.start < 4.0 and n.end <= 4.0 for n in sc.notes)
    path = scores.save_score(tmp_path / "c.roll.npz", sc)
    back, roll = scores.load_score(path)
    assert back.notes == sc.notes and back.ensemble == sc.ensemble
    assert roll.shape == (4, 3, 128, 96)
    assert roll_to_notes(roll, rate=RATE) == roll_to_notes(notes_to_roll(sc.notes, 96), rate=RATE)


def test_note_f1():
    a = [Note("melody", 60, 0.0, 0.5, 80), Note("melody", 62, 0.5, 1.0, 80),
         Note("drums", 36, 0.0, 0.1, 80)]
    assert note_f1(a, a)["f1"] == 1.0
    shifted = [Note(n.track, n.pitch, n.start + 0.04, n.end, n.velocity) for n in a]
    assert note_f1(shifted, a)["f1"] == 1.0
    late = [Note(n.track, n.pitch, n.start + 0.06, n.end, n.velocity) for n in a]
    assert note_f1(late, a)["f1"] == 0.0
    assert note_f1(a[:1], a)["recall"] == pytest.approx(1 / 3)
    assert note_f1(a, a[:2], pitched_only=True)["f1"] == 1.0
    assert note_f1([], [])["f1"] == 1.0 and note_f1(a, [])["f1"] == 0.0


def test_corpus_builder_writes_clip_scores_and_they_can_be_recomputed(tmp_path):
    """The builder writes every clip's ``.roll.npz``; ``corpus scores`` re-plans the corpus
    (no rendering) and writes the same score for a missing sidecar."""
    from diffv2m.cli import main as cli
    from diffv2m.data.corpus import build_corpus
    out = tmp_path / "c"
    rep = build_corpus(out, minutes=0.35, seed=0)
    paths = [scores.roll_path(out, r) for r in rep.records]
    assert len(paths) >= 2 and all(p.is_file() for p in paths)
    first, roll = scores.load_score(paths[0])
    assert first.notes and roll.shape == (4, 3, 128, int(rep.records[0]["duration"] * RATE))
    assert first.ensemble.name == rep.records[0]["ensemble"]
    assert {n.track for n in first.notes} & {"melody"}
    # onsets of the score are the manifest's onsets (the builder's own note list)
    pitched = sorted({round(n.start, 4) for n in first.notes if n.track != "drums"})
    np.testing.assert_allclose(pitched, np.round(rep.records[0]["onset_times"], 4), atol=2e-4)
    before = paths[1].read_bytes()
    paths[1].unlink()
    mtime = paths[0].stat().st_mtime_ns
    assert cli(["corpus", "scores", str(out), "--quiet"]) == 0
    assert paths[1].is_file() and paths[0].stat().st_mtime_ns == mtime
    a, ra = scores.load_score(paths[1])
    b_path = tmp_path / "before.roll.npz"
    b_path.write_bytes(before)
    b, rb = scores.load_score(b_path)
    assert a.notes == b.notes and np.array_equal(ra, rb)


def test_monophonic_keeps_the_most_probable_note_and_cuts_overlaps():
    from diffv2m.score.take import monophonic, score_from_probabilities
    prob = np.zeros((4, 3, 128, 24), np.float32)
    prob[0, ONSET, 60, 0], prob[0, ONSET, 64, 0] = 0.7, 0.9       # a dyad: 64 is likelier
    prob[0, FRAME, 60, 0:12] = prob[0, FRAME, 64, 0:12] = 1.0
    prob[0, ONSET, 67, 6] = 0.8                                   # starts while 64 sounds
    prob[0, FRAME, 67, 6:10] = 1.0
    prob[1, ONSET, 50, 0] = prob[1, ONSET, 53, 0] = 0.9          # accompaniment keeps chords
    prob[2, ONSET, 40, 0] = prob[2, ONSET, 41, 0] = 0.9          # bass: one of them
    prob[:, VELOCITY] = 0.5
    notes = roll_to_notes(prob, rate=RATE)
    mono = monophonic(notes, prob, ("melody", "bass"), rate=RATE, pitch_low=0)
    mel = [(n.pitch, n.start, n.end) for n in mono if n.track == "melody"]
    assert mel == [(64, 0.0, 6 / RATE), (67, 6 / RATE, 10 / RATE)]
    assert sorted(n.pitch for n in mono if n.track == "accompaniment") == [50, 53]
    assert len([n for n in mono if n.track == "bass"]) == 1
    sc = score_from_probabilities(prob, duration=1.0, rate=RATE, pitch_low=0, cls=1)
    assert [n.pitch for n in sc.notes if n.track == "melody"] == [64, 67]
    assert sc.ensemble.name in ("piano", "pastoral") and sc.duration == 1.0   # moderate class


def test_hold_lengthens_blips_but_never_past_a_new_strike():
    from diffv2m.score.take import MIN_HELD_FRAMES, hold
    assert MIN_HELD_FRAMES == 4
    f = 1 / RATE
    notes = [Note("melody", 60, 0.0, f, 90),               # a one-frame blip -> 4 frames
             Note("bass", 40, 0.0, f, 90), Note("bass", 40, 2 * f, 3 * f, 90),  # re-struck at 2
             Note("accompaniment", 55, 0.0, 10 * f, 70),   # long already: unchanged
             Note("drums", 36, 0.0, f, 100)]               # drums are hits: unchanged
    got = {(n.track, n.start): n.end for n in hold(notes, rate=RATE)}
    assert np.isclose(got[("melody", 0.0)], 4 * f)
    assert np.isclose(got[("bass", 0.0)], 2 * f) and np.isclose(got[("bass", 2 * f)], 6 * f)
    assert np.isclose(got[("accompaniment", 0.0)], 10 * f) and np.isclose(got[("drums", 0.0)], f)


def test_an_accompaniment_unison_with_the_melody_or_bass_is_dropped():
    from diffv2m.score.take import drop_unisons
    f = 1 / RATE
    notes = [Note("melody", 64, 0.0, 4 * f, 90), Note("accompaniment", 64, f, 5 * f, 70),
             Note("accompaniment", 60, 0.0, 4 * f, 70),                 # a chord tone: kept
             Note("accompaniment", 64, 3 * f, 6 * f, 70),               # two frames later: kept
             Note("bass", 40, 0.0, 4 * f, 80), Note("accompaniment", 40, 0.0, 4 * f, 70)]
    kept = [(n.track, n.pitch, round(n.start * RATE)) for n in drop_unisons(notes, rate=RATE)]
    assert kept == [("melody", 64, 0), ("accompaniment", 60, 0), ("accompaniment", 64, 3),
                    ("bass", 40, 0)]


def test_the_mood_table_names_ensembles_that_exist():
    from diffv2m.score.take import MOOD_ENSEMBLES, ORCHESTRATIONS, ensemble, ensemble_names
    for name in MOOD_ENSEMBLES.values():
        ens = ensemble(name)
        assert set(ens.programs) == {"melody", "accompaniment", "bass"}
        assert all(0 <= p < 128 for p in ens.programs.values())
    assert set(ORCHESTRATIONS) <= set(ensemble_names()) and "strings" in ensemble_names()
    assert ensemble("strings").programs == {"melody": 40, "accompaniment": 41, "bass": 42}
