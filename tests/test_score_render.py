"""Score rendering: MIDI files, FluidSynth audio and stems (real libfluidsynth, real SoundFont)."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffv2m.errors import UserError
from diffv2m.score import midi, render, take
from diffv2m.score.events import TRACKS, Ensemble, Note, Score

SR = 48000


def _have_soundfont() -> bool:
    try:
        render.find_soundfont()
        render._fluidsynth()             # the renderer's own (quiet) import of pyfluidsynth
        return True
    except (UserError, ImportError):
        return False


needs_synth = pytest.mark.skipif(not _have_soundfont(),
                                 reason="FluidSynth or a GM SoundFont is not installed")


def known_score(seed: int = 0, seconds: float = 4.0, lead: float = 0.5) -> Score:
    """A little four-track phrase: notes from ``lead`` s to 1 s before the end."""
    rng = np.random.default_rng(seed)
    notes, t = [], lead
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    while t < seconds - 1.0 - 1e-9:
        notes.append(Note("melody", 72 + scale[int(rng.integers(8))], t, t + 0.22, 96))
        if round(t / 0.25) % 2 == 0:
            notes.append(Note("accompaniment", 60 + scale[int(rng.integers(8))], t, t + 0.45, 70))
            notes.append(Note("drums", 36 if round(t / 0.5) % 2 == 0 else 38, t, t + 0.1, 100))
        if round(t / 0.25) % 4 == 0:
            notes.append(Note("bass", 36 + scale[int(rng.integers(8))], t, t + 0.9, 84))
        t = round(t + 0.25, 6)
    return Score(notes, Ensemble("test", {"melody": 73, "accompaniment": 0, "bass": 33}),
                 seconds, tempo_bpm=120.0)


def _key(n: Note):
    return (n.track, n.pitch, round(n.start, 3), round(n.end, 3), n.velocity)


# ----------------------------------------------------------------------------- MIDI
def test_midi_round_trip_same_notes_and_programs(tmp_path):
    score = known_score(1)
    path = tmp_path / "take.mid"
    midi.write_midi(score, path)
    back = midi.read_midi(path)
    assert sorted(map(_key, back.notes)) == sorted(map(_key, score.notes))
    assert back.ensemble.programs == {"melody": 73, "accompaniment": 0, "bass": 33, "drums": 0}
    assert back.tempo_bpm == pytest.approx(120.0)
    assert back.duration == pytest.approx(score.duration, abs=2e-3)
    assert not list(tmp_path.glob(".*part*"))


def test_midi_read_by_pretty_midi_tracks_channels_programs():
    pretty_midi = pytest.importorskip("pretty_midi")
    score = known_score(2)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(render.midi_bytes(score)))
    inst = {i.name: i for i in pm.instruments}
    assert set(inst) == set(TRACKS)
    assert inst["drums"].is_drum and not any(inst[t].is_drum for t in TRACKS if t != "drums")
    assert [inst[t].program for t in ("melody", "accompaniment", "bass")] == [73, 0, 33]
    for track in TRACKS:
        want = sorted((n.pitch, round(n.start, 3), n.velocity) for n in score.notes if n.track == track)
        got = sorted((n.pitch, round(n.start, 3), n.velocity) for n in inst[track].notes)
        assert got == want
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0)


def test_midi_missing_folder_is_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(UserError) as exc:
        midi.write_midi(known_score(), tmp_path / "nope" / "take.mid")
    assert "\n" not in str(exc.value) and "does not exist" in str(exc.value)
    assert not (tmp_path / "nope").exists()


def test_read_midi_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(UserError, match="bad.mid: not a readable MIDI file"):
        midi.read_midi(bad)


# ----------------------------------------------------------------------------- SoundFont
def test_soundfont_explicit_missing_and_unreadable(tmp_path):
    with pytest.raises(UserError, match="SoundFont not found"):
        render.find_soundfont(str(tmp_path / "missing.sf2"))
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF\0\0\0\0WAVEfmt " + bytes(100))
    with pytest.raises(UserError) as exc:
        render.find_soundfont(str(junk))
    assert "not a SoundFont" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(UserError, match="not a file"):
        render.find_soundfont(str(tmp_path))


def test_no_system_soundfont_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", (str(tmp_path / "a.sf2"),))
    with pytest.raises(UserError) as exc:
        render.find_soundfont()
    msg = str(exc.value)
    assert "apt-get install fluidsynth fluid-soundfont-gm" in msg and "\n" not in msg


@needs_synth
def test_truncated_soundfont_fails_to_load_with_one_line(tmp_path):
    real = Path(render.find_soundfont())
    with open(real, "rb") as f:
        head = f.read(4096)                      # RIFF....sfbk header, then cut short
    bad = tmp_path / "cut.sf2"
    bad.write_bytes(head)
    with pytest.raises(UserError) as exc:
        render.render_score(known_score(), sample_rate=SR, soundfont=str(bad))
    assert "cut.sf2" in str(exc.value) and "\n" not in str(exc.value)


def test_without_fluidsynth_binding_one_line():
    code = ("import sys; sys.modules['fluidsynth'] = None\n"
            "from diffv2m.errors import UserError\n"
            "from diffv2m.score import render\n"
            "from diffv2m.score.events import Ensemble, Note, Score\n"
            "s = Score([Note('melody', 60, 0.0, 0.5, 90)], Ensemble('x'), 1.0)\n"
            "try:\n    render.render_score(s)\nexcept UserError as e:\n    print('ERR', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("ERR")]
    assert len(lines) == 1 and "apt-get install fluidsynth" in lines[0], res.stdout + res.stderr


# ----------------------------------------------------------------------------- audio
@needs_synth
def test_render_stereo_length_deterministic_and_silent_where_no_notes():
    score = known_score(3, seconds=4.0, lead=0.5)
    y = render.render_score(score, sample_rate=SR)
    assert y.dtype == np.float32 and y.shape == (2, int(round(4.0 * SR)))
    render.render_score(known_score(4), sample_rate=SR)          # something else in between
    assert np.array_equal(y, render.render_score(score, sample_rate=SR))
    assert not np.array_equal(y[0], y[1])                         # real stereo, not mono twice
    # before the first note: only the reverb's anti-denormal offset (~1e-8), below -120 dBFS
    assert np.max(np.abs(y[:, : int(0.5 * SR) - 64])) < 1e-6
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(y[:, int(0.6 * SR): int(2.9 * SR)]) > 0.05         # the notes sound
    assert np.max(np.abs(y)) <= 10 ** (render.PEAK_CEILING_DBFS / 20) + 1e-6
    silent = render.render_score(Score([], Ensemble("x"), 1.5), sample_rate=SR)
    assert silent.shape == (2, int(1.5 * SR)) and not np.any(silent)


@needs_synth
def test_render_loudness_target_and_other_rate():
    import pyloudnorm
    score = known_score(5, seconds=6.0)
    y = render.render_score(score, sample_rate=44100)
    assert y.shape == (2, 6 * 44100)
    lufs = pyloudnorm.Meter(44100).integrated_loudness(y.T.astype(np.float64))
    peak_db = 20 * np.log10(np.max(np.abs(y)))
    # either at the loudness target, or held back by the peak ceiling
    assert abs(lufs - render.TARGET_LUFS) < 0.05 or abs(peak_db - render.PEAK_CEILING_DBFS) < 0.01


@needs_synth
def test_stems_sum_to_the_mix():
    score = known_score(6)
    mix = render.render_score(score, sample_rate=SR)
    stems = render.render_stems(score, sample_rate=SR)
    assert list(stems) == list(TRACKS)
    assert all(s.shape == mix.shape and s.dtype == np.float32 for s in stems.values())
    total = sum(stems[t].astype(np.float64) for t in TRACKS)
    assert np.max(np.abs(total - mix)) < 1e-5
    for t in TRACKS:                                           # every track really plays
        assert np.sqrt(np.mean(stems[t] ** 2)) > 1e-3
    both_mix, both_stems = render.render_mix_and_stems(score, sample_rate=SR)
    assert np.array_equal(both_mix, mix)                       # --stems changes no sample
    assert all(np.array_equal(both_stems[t], stems[t]) for t in TRACKS)
    solo = Score([n for n in score.notes if n.track == "bass"], score.ensemble, score.duration)
    s2 = render.render_stems(solo, sample_rate=SR)
    assert not np.any(s2["melody"]) and not np.any(s2["drums"]) and np.any(s2["bass"])


HARP = Ensemble("harp-test", {"melody": 46, "accompaniment": 46, "bass": 46})


def _stem(notes, seconds=3.0, track="accompaniment"):
    """One track's unscaled render (no loudness gain), so renders can be added."""
    return render._stems(Score(notes, HARP, seconds), SR, None)[track].astype(np.float64)


@needs_synth
def test_presets_are_read_when_played_and_pinning_changes_no_sample():
    """Dynamic sample loading: a render reads (and pins) the presets it plays; samples read
    ahead by ``pin`` (the preload's) give the same render bit for bit."""
    sf = render.find_soundfont()
    notes = tuple(n for n in known_score(3).notes if n.track in ("melody", "drums"))
    melody = tuple(n for n in notes if n.track == "melody")
    drums = tuple(n for n in notes if n.track == "drums")
    n = 4 * SR
    lazy = render._Synth(sf, SR)
    assert lazy.pinned == {}
    a = lazy.render("melody", melody, 68, n), lazy.render("drums", drums, 0, n)
    assert set(lazy.pinned) == {(0, 68), (128, 0)}
    ahead = render._Synth(sf, SR)
    ahead.pin(take.presets())
    assert set(ahead.pinned) == set(take.presets())
    b = ahead.render("drums", drums, 0, n), ahead.render("melody", melody, 68, n)
    assert np.array_equal(a[0], b[1]) and np.array_equal(a[1], b[0])
    assert np.max(np.abs(a[0])) > 0.01 and np.max(np.abs(a[1])) > 0.01
    # a preset never pinned (past the holder's channels) is read by the render itself
    full = render._Synth(sf, SR)
    full.pin([(0, p) for p in range(render.MIDI_CHANNELS)])
    assert len(full.pinned) == render.MIDI_CHANNELS and (0, 68) not in full.pinned
    assert np.array_equal(full.render("melody", melody, 68, n), a[0])


@needs_synth
def test_a_key_struck_again_stops_its_previous_note_other_keys_ring_on():
    """A harp string plucked again stops ringing first; other strings ring on."""
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))  # noqa: E731
    first = Note("accompaniment", 60, 0.0, 0.2, 100)
    window = slice(int(2.2 * SR), int(3.0 * SR))         # 1.2-2 s after the second stroke
    for key, stopped in ((60, True), (67, False)):
        again = Note("accompaniment", key, 1.0, 1.2, 100)
        together = _stem([first, again])
        apart = _stem([first]) + _stem([again])          # each note alone: both ring
        gone = rms((apart - together)[:, window]) / rms(apart[:, window])
        if stopped:          # the first note's ring is gone: what is left is the second's
            assert gone > 0.3
            second = _stem([again])[:, window]
            assert rms(together[:, window] - second) < 0.1 * rms(second)
        else:
            assert gone < 1e-3


def test_parts_keep_each_key_whole_and_do_not_depend_on_the_machine(monkeypatch):
    notes = [Note("accompaniment", 40 + k % 20, 0.05 * k, 0.05 * k + 0.3, 80) for k in range(130)]
    notes += [Note("melody", 70 + k % 3, 0.1 * k, 0.1 * k + 0.1, 90) for k in range(20)]
    notes += [Note("drums", 36 + k % 20, 0.1 * k, 0.1 * k + 0.05, 90) for k in range(25)]
    score = Score(notes, HARP, 8.0)
    parts = render._parts(score)
    assert [t for t, _ in parts] == ["melody", "accompaniment", "accompaniment", "drums"]
    for track, part in parts:
        if track != "drums":
            assert len({n.pitch for n in part}) <= render.KEYS_PER_SYNTH
    acc = [part for t, part in parts if t == "accompaniment"]
    keys = [{n.pitch for n in part} for part in acc]
    assert not keys[0] & keys[1] and len(keys[0] | keys[1]) == 20    # a key in one part only
    assert sorted(_key(n) for part in acc for n in part) == sorted(
        _key(n) for n in notes if n.track == "accompaniment")
    if _have_soundfont():        # the parts, not the cores, decide the samples
        here = render.render_score(score, sample_rate=SR)
        monkeypatch.setattr(render.os, "cpu_count", lambda: 1)
        assert np.array_equal(here, render.render_score(score, sample_rate=SR))


@needs_synth
def test_same_score_same_samples_in_a_new_process_and_short_takes():
    import hashlib
    score = known_score(8, seconds=3.0)
    here = hashlib.sha256(render.render_score(score, sample_rate=SR).tobytes()).hexdigest()
    code = ("import hashlib, sys; sys.path.insert(0, %r)\n"
            "from test_score_render import known_score\n"
            "from diffv2m.score import render\n"
            "print(hashlib.sha256(render.render_score(known_score(8, seconds=3.0), "
            "sample_rate=%d).tobytes()).hexdigest())\n") % (str(Path(__file__).parent), SR)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == here, res.stderr[-2000:]
    short = Score([Note("melody", 69, 0.0, 0.2, 100)], Ensemble("x"), 0.25)
    y = render.render_score(short, sample_rate=SR)               # shorter than one BS.1770 block
    assert y.shape == (2, 12000) and np.isfinite(y).all() and np.abs(y).max() > 0.01
    with pytest.raises(UserError, match="sample rate"):
        render.render_score(short, sample_rate=1000)


@needs_synth
def test_preloaded_soundfont_is_the_one_renders_use_and_gives_the_same_samples(tmp_path):
    import hashlib
    rate = 32000                                     # a (SoundFont, rate) no other test loads
    key = (str(Path(render.find_soundfont()).resolve()), rate)
    render._SYNTHS.pop(key, None)
    thread = render.preload(None, rate)
    thread.join(60)
    assert not thread.is_alive() and key in render._SYNTHS
    loaded = render._SYNTHS[key]
    score = known_score(3, seconds=3.0)
    here = render.render_score(score, sample_rate=rate)
    assert render._SYNTHS[key] is loaded             # the render borrowed it: no second load
    # a process that preloads renders the same samples as one that does not
    code = ("import hashlib, sys; sys.path.insert(0, %r)\n"
            "from test_score_render import known_score\n"
            "from diffv2m.score import render\n"
            "render.preload(None, %d)\n"
            "print(hashlib.sha256(render.render_score(known_score(3, seconds=3.0), "
            "sample_rate=%d).tobytes()).hexdigest())\n") % (str(Path(__file__).parent), rate,
                                                            rate)
    import os
    for ci in ("true", None):       # with $CI pyfluidsynth would print: stdout stays the hash
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env=env)
        assert res.stdout == hashlib.sha256(here.tobytes()).hexdigest() + "\n", res.stderr[-2000:]
    # a SoundFont that cannot load: the preload keeps quiet, the render says what is wrong
    real = Path(render.find_soundfont())
    with open(real, "rb") as f:
        head = f.read(4096)
    bad = tmp_path / "cut.sf2"
    bad.write_bytes(head)
    render.preload(str(bad), SR).join(60)
    assert (str(bad.resolve()), SR) not in render._SYNTHS
    with pytest.raises(UserError) as exc:
        render.render_score(score, sample_rate=SR, soundfont=str(bad))
    assert "cut.sf2" in str(exc.value) and "\n" not in str(exc.value)


def test_generate_preloads_the_soundfont_for_score_models_only(monkeypatch):
    from diffv2m import generate_cli
    calls = []
    monkeypatch.setattr(render, "preload",
                        lambda sf, rate, presets=(): calls.append((sf, rate, presets)))
    parse = generate_cli.build_parser().parse_args
    generate_cli.preload_renderer(parse(["v.mp4"]))                   # the default: score
    generate_cli.preload_renderer(parse(["v.mp4", "--sample-rate", "44100",
                                         "--soundfont", "/x/gm.sf2", "--ensemble", "brass"]))
    generate_cli.preload_renderer(parse(["v.mp4", "--ensemble", "no-such-ensemble"]))
    generate_cli.preload_renderer(parse(["v.mp4", "--model", "audio"]))
    generate_cli.preload_renderer(parse(["v.mp4", "--checkpoint", "m.safetensors"]))
    generate_cli.preload_renderer(parse(["v.mp4", "--onnx-dir", "/no/such/dir"]))
    mood = take.presets()
    assert calls == [(None, 48000, mood), ("/x/gm.sf2", 44100, [(0, 32), (0, 56), (0, 61), (128, 0)]),
                     (None, 48000, [])]
    # the mood table's presets: every ensemble it can pick, and the drum kit
    wanted = {(0, p) for name in take.MOOD_ENSEMBLES.values()
              for p in take.ensemble(name).programs.values()} | {(128, 0)}
    assert set(mood) == wanted and len(mood) == len(wanted)
