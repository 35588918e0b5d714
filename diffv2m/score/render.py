"""Rendering a :class:`~diffv2m.score.events.Score`: a Standard MIDI File, and audio + stems
synthesised by FluidSynth with a General-MIDI SoundFont.  Torch-free (the runtime renders).

* MIDI: :func:`midi_bytes` and :func:`write_midi` (defined in ``diffv2m.score.midi``).
* Audio (:func:`render_score`, :func:`render_stems`): the notes drive FluidSynth (pyfluidsynth,
  which binds Debian's libfluidsynth3) directly at their sample times, in 32-bit float stereo.
  The SoundFont is opened once per (SoundFont, sample rate) in this process (its presets'
  samples read when first played, or ahead by :func:`preload`, and kept) and lent to a
  fresh single-core synthesizer for every render, so a new take does not pay the load again
  and the same score gives the same samples bit for bit whatever was rendered before.
* A key struck again stops its previous note first (a string plucked again stops ringing):
  each key of a pitched track has a MIDI channel of its own and all share one SoundFont
  exclusive class, so FluidSynth fades the earlier note with its exclusive-class release
  (:func:`_parts`).  Without it a harp's every note rang on for ~8 s, even under the next
  stroke of the same string: ~75 voices at once, most of the render's time, and blur.
* The mix is the sum of the tracks; each track is the sum of its parts (a fixed split of its
  keys, :func:`_parts`), each rendered by a synthesizer of its own, side by side on the cores
  (so the stems sum to the mix exactly), then scaled by ONE gain: loudness normalised to
  ``TARGET_LUFS`` integrated (ITU-R BS.1770-4 with gating, measured by libebur128 through
  pyebur128), lowered where needed so the sample peak stays at or below
  ``PEAK_CEILING_DBFS`` (never clipped).  The stems get the same gain.  A
  score without notes renders to silence.
"""
from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UserError
from .events import TRACKS, Note, Score
from .midi import CHANNELS, REVERB_SEND, check_notes, midi_bytes, programs, write_midi  # noqa: F401 (API)

SOUNDFONT_PATHS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
)
INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"

TARGET_LUFS = -16.0
PEAK_CEILING_DBFS = -1.0

# How a track's notes are shared among synthesizers (see _parts).  Fixed numbers, never the
# machine's core count: the same score gives the same samples on every machine.
MIDI_CHANNELS = 48                        # per synth; FluidSynth's percussion ones: 9, 25, 41
PITCHED_CHANNELS: tuple[int, ...] = tuple(c for c in range(MIDI_CHANNELS)
                                          if c % 16 != CHANNELS["drums"])
KEYS_PER_SYNTH = len(PITCHED_CHANNELS)    # one MIDI channel per key
NOTES_PER_SYNTH = 96                      # a busier track is shared by more synthesizers
GEN_EXCLUSIVECLASS = 57                   # SoundFont 2.01 generator 57
RESTRIKE_CLASS = 1


# ----------------------------------------------------------------------------- SoundFont
def _check_soundfont(path: Path) -> str:
    """``path`` as a string if it is a readable SoundFont 2/3 file, else one-line UserError."""
    if not path.exists():
        raise UserError(f"{path}: SoundFont not found")
    if not path.is_file():
        raise UserError(f"{path}: SoundFont is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise UserError(f"{path}: cannot read SoundFont ({exc.strerror or exc})") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise UserError(f"{path}: not a SoundFont (.sf2/.sf3 files start with RIFF....sfbk)")
    return str(path)


def find_soundfont(explicit: str | None = None) -> str:
    """The General-MIDI SoundFont to render with: ``explicit`` if given (checked), else the
    first of ``SOUNDFONT_PATHS`` that exists.  A missing or unreadable file is a UserError."""
    if explicit is not None:
        return _check_soundfont(Path(explicit).expanduser())
    for cand in SOUNDFONT_PATHS:
        if Path(cand).is_file():
            return _check_soundfont(Path(cand))
    raise UserError(f"{SOUNDFONT_PATHS[0]}: no General-MIDI SoundFont found "
                    f"(install one: {INSTALL_HINT}; or pass --soundfont FILE.sf2)")


# ----------------------------------------------------------------------------- synth
_SYNTHS: dict[tuple[str, int], "_Synth"] = {}
_SYNTHS_LOCK = threading.Lock()


def _cfunc(fs, name, result, *args):
    """A ctypes prototype on pyfluidsynth's own library handle (functions it does not wrap)."""
    fn = getattr(fs, name, None)
    if fn is None:
        fn = fs.cfunc(name, result, *[(a, t, 1) for a, t in args])
        if fn is None:
            raise UserError(f"libfluidsynth has no {name}: install FluidSynth 2 (`{INSTALL_HINT}`)")
        setattr(fs, name, fn)
    return fn


def _fluidsynth():
    """The pyfluidsynth module with the few extra functions used here, or a one-line
    UserError saying what to install."""
    import contextlib
    import io
    try:
        # pyfluidsynth prints where it found the library when $CI is set: keep stdout clean
        # (only then: the redirect swaps sys.stdout for every thread)
        with (contextlib.redirect_stdout(io.StringIO()) if os.environ.get("CI")
              else contextlib.nullcontext()):
            import fluidsynth as fs
    except ImportError as exc:
        missing = "pyfluidsynth" if "No module named" in str(exc) else "libfluidsynth"
        raise UserError(f"FluidSynth is not available ({missing} missing): install it with "
                        f"`{INSTALL_HINT}` and `pip install pyfluidsynth`") from None
    vp, i = ctypes.c_void_p, ctypes.c_int
    _cfunc(fs, "fluid_synth_write_float", i, ("synth", vp), ("len", i), ("lout", vp),
           ("loff", i), ("lincr", i), ("rout", vp), ("roff", i), ("rincr", i))
    _cfunc(fs, "fluid_synth_add_sfont", i, ("synth", vp), ("sfont", vp))
    _cfunc(fs, "fluid_synth_remove_sfont", i, ("synth", vp), ("sfont", vp))
    _cfunc(fs, "fluid_synth_get_sfont_by_id", vp, ("synth", vp), ("id", i))
    _cfunc(fs, "fluid_synth_set_gen", i, ("synth", vp), ("chan", i), ("param", i),
           ("value", ctypes.c_float))
    log = _cfunc(fs, "fluid_set_log_function", vp, ("level", i), ("fun", vp), ("data", vp))
    for level in (2, 3, 4):     # FLUID_WARN, INFO, DBG: a fresh synth warns "no preset" per channel
        log(level, None, None)
    return fs


class _Synth:
    """A SoundFont opened once (in a holder synth), and a FRESH single-core synthesizer per
    render that borrows it: FluidSynth's state (voices, reverb and chorus buffers) outlives
    ``system_reset``, so only a new synth gives the same samples for the same notes whatever
    was rendered before.  A new synth costs about a millisecond.

    The SoundFont is opened with FluidSynth's dynamic sample loading: only the presets a
    render plays have their samples read (about 40 MB for every preset the mood table uses,
    against 148 MB for all of FluidR3_GM: 0.05 s instead of 0.12-0.15 s, most of it the
    memory's first touch).  Each preset played is pinned on a channel of the holder
    (:meth:`pin`), so its samples are read once per process and stay, as a whole load's do."""

    def __init__(self, soundfont: str, sample_rate: int):
        self.fs = _fluidsynth()
        # no chorus: no channel sends to it (CC 93 stays 0), so it only added silence, at a cost
        self.settings = {"synth.cpu-cores": 1, "synth.midi-channels": MIDI_CHANNELS,
                         "synth.polyphony": 512, "synth.chorus.active": 0}
        self.holder = self.fs.Synth(gain=0.5, samplerate=float(sample_rate),
                                    **self.settings, **{"synth.dynamic-sample-loading": 1})
        self.sfid = self.holder.sfload(soundfont)
        self.sfont = (self.fs.fluid_synth_get_sfont_by_id(self.holder.synth, self.sfid)
                      if self.sfid >= 0 else None)
        if not self.sfont:
            self.holder.delete()
            raise UserError(f"{soundfont}: FluidSynth cannot load this SoundFont")
        self.sample_rate = sample_rate
        self.lock = threading.Lock()
        self.pinned: dict[tuple[int, int], int] = {}     # (bank, program) -> holder channel

    def pin(self, presets) -> None:
        """Read the samples of ``presets`` ((bank, program) pairs: bank 128 is the drum kits)
        now and keep them: each is selected on a channel of the holder, which never plays.
        Past the holder's channels a preset is read by each render that plays it."""
        with self.lock:
            for bank, program in presets:
                key = (int(bank), int(program))
                if key in self.pinned or len(self.pinned) >= MIDI_CHANNELS:
                    continue
                ch = len(self.pinned)
                self.holder.program_select(ch, self.sfid, *key)
                self.pinned[key] = ch

    def render(self, track: str, notes: tuple[Note, ...], program: int, n: int) -> np.ndarray:
        """Float32 [2, n] of ``notes`` (all on ``track``, played with GM ``program``).  A
        pitched track's keys each get a MIDI channel of their own (so at most
        ``KEYS_PER_SYNTH`` keys), sharing one exclusive class: see :func:`_parts`."""
        out = np.zeros((2, n), np.float32)
        sr = self.sample_rate
        drums = track == "drums"
        if drums:
            channel = {note.pitch: CHANNELS["drums"] for note in notes}
        else:
            keys = sorted({note.pitch for note in notes})
            if len(keys) > KEYS_PER_SYNTH:
                raise ValueError(f"{len(keys)} keys for one synth (at most {KEYS_PER_SYNTH})")
            channel = dict(zip(keys, PITCHED_CHANNELS))
        events = []                                 # (sample, order, channel, key, velocity)
        for note in notes:
            on = int(round(note.start * sr))
            off = max(on + 1, int(round(note.end * sr)))
            if on >= n:
                continue
            ch = channel[note.pitch]
            events.append((on, 1, ch, note.pitch, note.velocity))
            if off < n:
                events.append((off, 0, ch, note.pitch, 0))
        events.sort()
        fs = self.fs
        bank = 128 if drums else 0                  # the SoundFont's drum kits: bank 128
        self.pin([(bank, program)])
        with self.lock:                 # the shared SoundFont is attached and detached in turn
            s = fs.Synth(gain=0.5, samplerate=float(sr), **self.settings)
            sid = fs.fluid_synth_add_sfont(s.synth, self.sfont)
            for ch in sorted(set(channel.values())):
                s.program_select(ch, sid, bank, program)
                if not drums:
                    s.cc(ch, 91, REVERB_SEND)
                    fs.fluid_synth_set_gen(s.synth, ch, GEN_EXCLUSIVECLASS, float(RESTRIKE_CLASS))
        try:                            # this synth alone: parts may render side by side
            pos = 0
            for at, kind, ch, key, vel in events:
                if at > pos:
                    self._fill(s, out, pos, at)
                    pos = at
                if kind:
                    s.noteon(ch, key, vel)
                else:
                    s.noteoff(ch, key)
            self._fill(s, out, pos, n)
        finally:
            with self.lock:
                fs.fluid_synth_remove_sfont(s.synth, self.sfont)
                s.delete()
        return out

    def _fill(self, s, out: np.ndarray, a: int, b: int) -> None:
        if b <= a:
            return
        left, right = out[0, a:b], out[1, a:b]
        self.fs.fluid_synth_write_float(s.synth, b - a, left.ctypes.data, 0, 1,
                                        right.ctypes.data, 0, 1)


def _synth(soundfont: str | None, sample_rate: int) -> _Synth:
    try:
        whole = float(sample_rate).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not (whole and 8000 <= float(sample_rate) <= 192000):
        raise UserError(f"sample rate {sample_rate}: must be a whole number of Hz in 8000..192000")
    sample_rate = int(sample_rate)
    sf = find_soundfont(soundfont)
    key = (str(Path(sf).resolve()), int(sample_rate))
    with _SYNTHS_LOCK:
        if key not in _SYNTHS:
            _SYNTHS[key] = _Synth(sf, int(sample_rate))
        return _SYNTHS[key]


def preload(soundfont: str | None, sample_rate: int,
            presets: list[tuple[int, int]] | tuple = ()) -> threading.Thread | None:
    """Start opening the SoundFont for renders at ``sample_rate`` on a background thread, and
    reading the samples of ``presets`` ((bank, program) pairs, see :meth:`_Synth.pin`), and
    return the thread: the work (about 0.05 s for FluidR3_GM and the mood table's presets)
    then runs beside whatever the caller does next (FluidSynth reads the file without the
    interpreter lock), and the first render waits for it.  Errors are left to that render to
    report (it loads again and fails)."""
    if os.environ.get("CI"):
        try:
            _fluidsynth()           # imported here, not on the thread: it redirects stdout
        except UserError:
            return None

    def load() -> None:             # (importing pyfluidsynth runs ldconfig: ~15 ms)
        try:
            _synth(soundfont, sample_rate).pin(presets)
        except Exception:           # noqa: BLE001 - the render says what is wrong
            pass
    thread = threading.Thread(target=load, name="diffv2m-soundfont", daemon=True)
    thread.start()
    return thread


# ----------------------------------------------------------------------------- loudness
def loudness_gain(mix: np.ndarray, sample_rate: int) -> float:
    """The one gain that brings ``mix`` [2, N] to ``TARGET_LUFS`` integrated loudness, lowered
    so the sample peak stays <= ``PEAK_CEILING_DBFS``; 1.0 for silence."""
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak <= 1e-9:
        return 1.0
    import pyebur128
    # interleaved frames, as they are: libebur128 takes float32 and filters in double
    dtype = np.float32 if mix.dtype == np.float32 else np.float64
    x = np.ascontiguousarray(mix.T, dtype)
    block = int(np.ceil(0.4 * sample_rate))          # BS.1770 needs one 400 ms block
    if len(x) < block:
        x = np.concatenate([x, np.zeros((block - len(x), x.shape[1]), dtype)])
    meter = pyebur128.R128State(x.shape[1], int(sample_rate), pyebur128.MeasurementMode.MODE_I)
    meter.add_frames(x.ravel(), len(x))
    lufs = pyebur128.get_loudness_global(meter)
    gain = 10.0 ** ((TARGET_LUFS - lufs) / 20.0) if np.isfinite(lufs) else 1.0
    ceiling = 10.0 ** (PEAK_CEILING_DBFS / 20.0)
    return float(min(gain, ceiling / peak))


# ----------------------------------------------------------------------------- audio
def _parts(score: Score) -> list[tuple[str, tuple[Note, ...]]]:
    """The score's notes as the parts that synthesizers of their own render, in a fixed order
    (track by track, as ``TRACKS``): the drums in one part; a pitched track's keys dealt in
    turn (lowest first) into ``g`` parts, ``g`` = the most of ceil(keys / KEYS_PER_SYNTH)
    and ceil(notes / NOTES_PER_SYNTH), so a busy accompaniment renders on several cores.  A
    key's notes stay in one part: each key has a channel of its own there, and all of them
    one exclusive class, so FluidSynth's own exclusive-class rule stops a key's previous note
    (with the fast release it gives a choked hi-hat) when the key sounds again, as a string
    plucked or struck again stops ringing first.  Notes of other keys ring on."""
    parts = []
    for track in TRACKS:
        notes = tuple(note for note in score.notes if note.track == track)
        if not notes:
            continue
        if track == "drums":
            parts.append((track, notes))
            continue
        keys = sorted({note.pitch for note in notes})
        g = max(-(-len(keys) // KEYS_PER_SYNTH), -(-len(notes) // NOTES_PER_SYNTH))
        g = min(g, len(keys))
        for j in range(g):
            mine = set(keys[j::g])
            parts.append((track, tuple(note for note in notes if note.pitch in mine)))
    return parts


def _tracks(score: Score, sample_rate: int, soundfont: str | None) -> dict[str, np.ndarray]:
    """Float32 [2, N] of every track that has notes: the sum of its parts, in their order."""
    check_notes(score)
    if not (score.duration > 0 and np.isfinite(score.duration)):
        raise ValueError(f"score duration must be positive, not {score.duration}")
    synth = _synth(soundfont, sample_rate)
    n = int(round(score.duration * int(sample_rate)))
    progs = programs(score)
    parts = _parts(score)
    # the parts on as many threads as there are cores, the busiest first (FluidSynth runs
    # without the GIL; each part's samples depend on its own notes only, so neither the
    # order nor the number of cores can change them)
    busiest = sorted(range(len(parts)), key=lambda j: -len(parts[j][1]))
    workers = max(1, min(len(parts), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {j: pool.submit(synth.render, parts[j][0], parts[j][1],
                                  progs[parts[j][0]], n) for j in busiest}
        rendered = [futures[j].result() for j in range(len(parts))]
    tracks: dict[str, np.ndarray] = {}
    for (track, _), audio in zip(parts, rendered):           # in the parts' fixed order
        if track in tracks:
            tracks[track] += audio                           # a busy track's next part
        else:
            tracks[track] = audio                            # its buffer becomes the track's
    return tracks


def _stems(score: Score, sample_rate: int, soundfont: str | None) -> dict[str, np.ndarray]:
    """One float32 [2, N] array per track of ``TRACKS`` (silence for a track without notes)."""
    tracks = _tracks(score, sample_rate, soundfont)
    n = int(round(score.duration * int(sample_rate)))
    return {t: tracks[t] if t in tracks else np.zeros((2, n), np.float32) for t in TRACKS}


def _mix(stems: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The sum of the tracks (float32 [2, n]), in ``TRACKS`` order (a missing track adds
    nothing; no track: silence)."""
    mix = np.zeros((2, n), np.float32)
    for t in TRACKS:
        if t in stems:
            mix += stems[t]
    return mix


def render_mix_and_stems(score: Score, *, sample_rate: int = 48000,
                         soundfont: str | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One synthesis, both outputs: the mix exactly as :func:`render_score` gives it (bit for
    bit) and the stems as :func:`render_stems` gives them (for ``--stems``: no second render)."""
    return _render(score, sample_rate, soundfont, with_stems=True)


def _render(score: Score, sample_rate, soundfont, *, with_stems: bool):
    """The mix and (``with_stems``) the stems, scaled in place by the mix's one gain: a take
    holds its parts' buffers and one more for the mix, nothing else of its length."""
    stems = (_stems if with_stems else _tracks)(score, sample_rate, soundfont)
    mix = _mix(stems, int(round(score.duration * int(sample_rate))))
    g = np.float32(loudness_gain(mix, sample_rate))
    mix *= g
    if not with_stems:
        return mix, None
    for t in TRACKS:
        stems[t] *= g
    return mix, stems


def render_stems(score: Score, *, sample_rate: int = 48000,
                 soundfont: str | None = None) -> dict[str, np.ndarray]:
    """One float32 [2, N] array per track of ``TRACKS`` (N = round(duration * rate)), all
    scaled by the mix's loudness gain, so they sum to :func:`render_score`'s output (within
    float rounding)."""
    return render_mix_and_stems(score, sample_rate=sample_rate, soundfont=soundfont)[1]


def render_score(score: Score, *, sample_rate: int = 48000,
                 soundfont: str | None = None) -> np.ndarray:
    """The take as float32 stereo [2, N], N = round(duration * rate), loudness normalised."""
    return _render(score, sample_rate, soundfont, with_stems=False)[0]
