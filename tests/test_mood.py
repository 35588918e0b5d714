"""The picture's mode: the key finder, the parallel-mode move of a take's notes, the mood
reader (colour grade -> major/minor), its training command, and its file."""
from __future__ import annotations

import numpy as np
import pytest

from diffv2m.errors import UserError
from diffv2m.features.mood import INPUTS, MoodReader, load_beside, mood_inputs
from diffv2m.score.events import Note
from diffv2m.score.key import find_key, key_name, midi_key, notes_key, to_mode

C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)
A_MINOR = (57, 59, 60, 62, 64, 65, 68, 69)          # harmonic minor


def melody(pitches, track="melody", step=0.25):
    return [Note(track, p, k * step, (k + 1) * step, 80) for k, p in enumerate(pitches * 3)]


def test_key_finder_names_tonic_and_mode():
    assert find_key(np.array(C_MAJOR), np.ones(8)) == (0, "major")
    assert find_key(np.array(A_MINOR), np.ones(8)) == (9, "minor")
    assert find_key(np.zeros(0), np.zeros(0)) == (0, "major")
    assert key_name(3, "major") == "Eb major" and key_name(8, "minor") == "G# minor"
    assert midi_key("Eb major") == "Eb" and midi_key("G# minor") == "G#m"


def test_the_corpus_labels_with_the_same_key_finder():
    from diffv2m.data import music
    from diffv2m.score import key
    assert music.key_mode is key.key_mode


def test_major_take_moved_to_minor_keeps_tonic_rhythm_and_drums():
    notes = melody(C_MAJOR) + melody((36, 38), track="drums")
    moved = to_mode(notes, "minor")
    assert notes_key(moved) == (0, "minor")
    pitched = sorted((n.start, n.pitch) for n in moved if n.track == "melody")
    want = {64: 63, 69: 68}                           # E -> Eb, A -> Ab; B stays (harmonic)
    assert pitched == sorted((n.start, want.get(n.pitch, n.pitch)) for n in notes
                             if n.track == "melody")
    assert [n for n in moved if n.track == "drums"] == [n for n in notes if n.track == "drums"]
    assert {(n.start, n.end, n.velocity) for n in moved} == {(n.start, n.end, n.velocity)
                                                             for n in notes}


def test_minor_take_moved_to_major_and_back():
    notes = melody(A_MINOR)
    major = to_mode(notes, "major")
    assert notes_key(major) == (9, "major")
    assert {n.pitch % 12 for n in major} <= {9, 11, 1, 2, 4, 6, 8}      # A major's scale
    assert notes_key(to_mode(major, "minor"))[1] == "minor"


def test_already_in_mode_is_left_alone_and_bad_mode_refused():
    notes = melody(C_MAJOR)
    assert to_mode(notes, "major") == notes
    with pytest.raises(ValueError):
        to_mode(notes, "dorian")


def test_notes_landing_on_one_pitch_become_one():
    # accompaniment E and Eb sounding together in C major: both Eb in minor -> one note
    notes = melody(C_MAJOR) + [Note("accompaniment", 64, 0.0, 1.0, 60),
                               Note("accompaniment", 63, 0.5, 1.5, 50),
                               Note("accompaniment", 60, 0.0, 1.0, 60)]
    moved = to_mode(notes, "minor")
    acc = sorted((n.pitch, n.start, n.end) for n in moved if n.track == "accompaniment")
    assert acc == [(60, 0.0, 1.0), (63, 0.0, 0.5), (63, 0.5, 1.5)]


# ------------------------------------------------------------------------ the mood reader
def graded(mode: str, energy: float, rng, seconds: int = 4) -> np.ndarray:
    """Colour histograms of random procedural shots graded as the corpus grades them."""
    from diffv2m.data.footage import apply_grade, grade_params
    from diffv2m.features.colour import colour_features
    base = rng.random((seconds, 1, 1, 3)) * 0.6 + 0.2
    tex = rng.random((seconds, 32, 32, 1)) * 0.4
    rgb = apply_grade(np.clip(base + tex - 0.2, 0, 1).astype(np.float32),
                      grade_params(mode, energy))
    return colour_features((rgb * 255).astype(np.uint8))


def synthetic_set(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x, y = [], []
    for k in range(n):
        mode = ("major", "minor")[k % 2]
        energy = rng.uniform(0.05, 0.95)
        cls = 0 if energy < 0.35 else (2 if energy >= 0.6 else 1)
        x.append(mood_inputs(graded(mode, energy, rng), cls))
        y.append(mode == "major")
    return np.array(x), np.array(y)


def test_inputs_are_saturation_and_value_marginals_and_class():
    rng = np.random.default_rng(0)
    colour = rng.random((3, 3072))
    colour /= colour.sum(axis=1, keepdims=True)
    x = mood_inputs(colour, 2)
    assert x.shape == (INPUTS,)
    h = colour.mean(axis=0).reshape(16, 12, 16)
    np.testing.assert_allclose(x[:12], h.sum(axis=(0, 2)))
    np.testing.assert_allclose(x[12:28], h.sum(axis=(0, 1)))
    assert list(x[28:]) == [0, 0, 1]
    with pytest.raises(ValueError):
        mood_inputs(np.zeros((3, 100)), 1)


def test_reader_learns_the_grade_and_reads_unseen_footage(tmp_path):
    from diffv2m.train.mood import accuracy, fit_mood_reader
    x, y = synthetic_set(60, seed=1)
    reader = fit_mood_reader(x, y, l2=1.0)
    xt, yt = synthetic_set(30, seed=2)
    assert accuracy(reader, xt, yt) >= 0.9
    # the file round trip gives the same readings, and mode() agrees with p_major()
    path = reader.save(tmp_path / "mood_reader.safetensors")
    again = load_beside(tmp_path)
    rng = np.random.default_rng(3)
    for mode in ("major", "minor"):
        colour = graded(mode, 0.5, rng)
        assert again.p_major(colour, 1) == reader.p_major(colour, 1)
        assert again.mode(colour, 1) == ("major" if reader.p_major(colour, 1) >= 0.5 else "minor")
    assert path.read_bytes()[:8] and load_beside(tmp_path / "nowhere") is None


def test_reader_needs_both_modes_and_a_positive_penalty():
    from diffv2m.train.mood import fit_mood_reader
    x, y = synthetic_set(6, seed=4)
    with pytest.raises(UserError, match="both modes"):
        fit_mood_reader(x, np.ones(len(x), bool))
    with pytest.raises(UserError, match="--l2"):
        fit_mood_reader(x, y, l2=0)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all"])
def test_a_broken_reader_file_is_one_line(tmp_path, content):
    bad = tmp_path / "mood_reader.safetensors"
    bad.write_bytes(content)
    with pytest.raises(UserError) as e:
        MoodReader.load(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_a_reader_of_other_inputs_is_refused(tmp_path):
    from safetensors.numpy import save_file
    bad = tmp_path / "mood_reader.safetensors"
    save_file({"mean": np.zeros(5), "std": np.ones(5), "weight": np.zeros(5),
               "bias": np.zeros(1)}, str(bad),
              metadata={"format": "diffv2m-mood-reader", "inputs": "something else"})
    with pytest.raises(UserError, match="not a mood reader"):
        MoodReader.load(bad)


def test_the_embedded_score_model_ships_its_reader_in_both_folders():
    from diffv2m import assets
    from diffv2m.cache import file_sha256
    from diffv2m.runtime.manifest import validate_manifest
    onnx = assets.model_onnx_dir("score")
    man = validate_manifest(onnx)
    beside = assets.model_checkpoint("score").parent
    assert man["mood_reader"]["sha256"] == file_sha256(beside / "mood_reader.safetensors")
    reader = MoodReader.load(onnx / man["mood_reader"]["file"])
    assert reader.meta["val_accuracy"] >= 0.9 and reader.meta["train_clips"] > 100


def test_train_mood_on_clips_without_modes_is_one_line(tmp_path):
    import json
    import subprocess
    import sys

    import tiny_corpus
    manifest = tiny_corpus.build(tmp_path / "corpus", n=3)
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "mode"}) + "\n"
                                for r in rows))
    out = tmp_path / "mood_reader.safetensors"
    res = subprocess.run([sys.executable, "-m", "diffv2m", "train", "mood", str(manifest),
                          "--config", str(manifest.parent / "tiny.json"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "no training clips with a 'mode'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_take_no_round_can_move_keeps_the_first_move_not_a_drifted_one():
    from diffv2m.score.key import TO_MAJOR, _parallel
    # G# minor with its third, fifth and seventh heavy: raising them reads as C minor (the
    # Ab major triad with a G), and further rounds would only wander on through minor keys
    weights = {1: .08, 3: .31, 6: .12, 8: .19, 10: .05, 11: .25}
    notes, t = [], 0.0
    for _ in range(3):
        for pc, d in weights.items():
            notes.append(Note("melody", 60 + pc, t, t + d, 80))
            t += d
    assert notes_key(notes) == (8, "minor")
    moved = to_mode(notes, "major")
    assert notes_key(moved)[1] == "minor"                      # the finder is not persuaded
    assert moved == _parallel(notes, 8, TO_MAJOR)              # and the tune stays nearest
