"""Music for the corpus: real scores shipped by music21, arranged and rendered with FluidSynth.

Why this way: the corpus needs real music whose beat grid is known exactly.  We read a score
(Bach chorales, Mozart/Haydn/Beethoven movements, Joplin, Monteverdi, folk fiddle tunes ...)
into a plain note list, choose a tempo and an instrumentation by seed, add a General-MIDI drum
track built on the score's own beat grid, write a Standard MIDI File ourselves (so every
event time, hence every beat time, is exact) and render it with the ``fluidsynth`` program.

Mood and class (documented here because the model is trained on them):

* ``mode``: ``"major"`` or ``"minor"`` by Krumhansl-Schmuckler key finding on the
  duration-weighted pitch classes (:func:`key_mode`; music21's own analysis is much slower).
* ``energy`` in [0, 1]: ``0.5 * (tempo - 70) / 80 + 0.5 * min(1, onset_rate / 6)`` where
  ``tempo`` is beats per minute and ``onset_rate`` the number of distinct score-note onsets
  per second (drums not counted).
* ``cls`` (coarse style class): 0 = calm/slow (energy < 0.35), 1 = moderate, 2 = energetic
  (energy >= 0.6).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..score.key import key_mode
from ..score.render import SOUNDFONT_PATHS, find_soundfont

SOUNDFONTS = SOUNDFONT_PATHS         # one list: diffv2m.score.render's
TPQ = 480                      # MIDI ticks per quarter note
TEMPO_RANGE = (70, 150)        # beats per minute, chosen per piece by seed

# source (music21 corpus folder) -> weight in the piece order; extensions parsed quickly
SOURCES: dict[str, float] = {
    "bach": 4.0, "ryansMammoth": 3.0, "mozart": 0.7, "haydn": 0.7, "beethoven": 0.7,
    "monteverdi": 0.7, "joplin": 0.2, "handel": 0.1, "corelli": 0.1, "schubert": 0.1,
    "chopin": 0.1, "trecento": 0.4,
}
EXTENSIONS = (".mxl", ".xml", ".musicxml", ".krn", ".abc")

# instrumentation: GM programs (0-based) from the top voice down; the bottom voice takes the
# last entry.  Drums are added separately on channel 10.
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "piano": (0,), "strings": (40, 40, 41, 42), "organ": (19,), "guitar": (24, 25, 32),
    "brass": (56, 56, 57, 58), "woodwinds": (73, 68, 71, 70), "epiano": (4, 4, 33),
    "harp": (46, 11, 32), "choir": (52, 52, 48, 42),
}

# GM percussion keys
KICK, SNARE, SIDESTICK, HAT, RIDE, SHAKER, CRASH = 36, 38, 37, 42, 51, 70, 49


@dataclass
class Piece:
    """A score reduced to what the builder needs: notes in quarter lengths and its metre."""
    name: str                          # corpus path, e.g. "bach/bwv10.7.mxl"
    onset_ql: np.ndarray               # [M] float64, note onsets (quarter lengths)
    dur_ql: np.ndarray                 # [M] float64
    pitch: np.ndarray                  # [M] int (MIDI)
    part: np.ndarray                   # [M] int (0 = top voice)
    n_parts: int
    beat_ql: float                     # one beat in quarter lengths (1.5 for 6/8)
    beats_per_bar: int
    first_downbeat_ql: float
    length_ql: float
    mode: str                          # "major" | "minor"


@dataclass
class Arrangement:
    """How one piece is played: tempo, instruments, drums, and the span to render."""
    piece: str
    tempo: float                       # beats per minute (exact: from us_per_quarter)
    us_per_quarter: int
    ensemble: str
    programs: list[int]
    drums: str                         # "none" | "soft" | "groove" | "drive"
    span_ql: tuple[float, float]       # rendered score range (starts on a downbeat)
    transpose: int = 0
    velocity: int = 80
    events: list[tuple[int, bytes]] = field(default_factory=list, repr=False)

    @property
    def sec_per_ql(self) -> float:
        return self.us_per_quarter / 1e6


def soundfont() -> str:
    """The GM soundfont to render with (the first of the system paths that exists)."""
    return find_soundfont()


def check_tools() -> None:
    """Fail with one line when FluidSynth or the soundfont is missing."""
    if shutil.which("fluidsynth") is None:
        raise UserError("fluidsynth: program not found (install the Debian package fluidsynth)")
    soundfont()


# ----------------------------------------------------------------------------- piece order
def candidate_pieces(seed: int) -> list[str]:
    """Every usable corpus piece, in a seed-determined order that interleaves the sources.

    Each position draws a source by weight (among sources with pieces left), then a random
    remaining piece of it, so any prefix of the list mixes styles.
    """
    from music21 import corpus
    root = Path(corpus.getComposer("bach")[0]).parents[1]
    pools: dict[str, list[str]] = {}
    for src in SOURCES:
        paths = sorted(str(Path(p).relative_to(root)) for p in corpus.getComposer(src)
                       if str(p).endswith(EXTENSIONS))
        if src == "bach":                      # the chorales; the few long works parse slowly
            paths = [p for p in paths if Path(p).name.startswith("bwv")]
        if paths:
            pools[src] = paths
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5C0E]))
    for src in pools:
        rng.shuffle(pools[src])
    order: list[str] = []
    while pools:
        names = sorted(pools)
        w = np.array([SOURCES[n] for n in names])
        src = names[int(rng.choice(len(names), p=w / w.sum()))]
        order.append(pools[src].pop())
        if not pools[src]:
            del pools[src]
    return order


# ----------------------------------------------------------------------------- parsing
def load_piece(name: str) -> Piece:
    """Parse ``name`` (a music21 corpus path) into a :class:`Piece`; ``ValueError`` if unusable."""
    from music21 import corpus, meter, stream
    score = corpus.parse(name)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    parts = list(score.parts) or [score]
    onset, dur, pitch, part = [], [], [], []
    for pi, p in enumerate(parts):
        open_ties: dict[int, int] = {}          # MIDI pitch -> index of the note it extends
        for n in p.flatten().notes:             # ties merged here: stripTies() is very slow
            ql = float(n.quarterLength)
            if ql <= 0 or n.duration.isGrace:
                continue
            tie = n.tie.type if n.tie is not None else None
            off = float(n.offset)
            for pt in n.pitches:
                m = int(pt.midi)
                if tie in ("stop", "continue") and m in open_ties:
                    i = open_ties[m]
                    dur[i] = off + ql - onset[i]
                    if tie == "stop":
                        del open_ties[m]
                    continue
                onset.append(off)
                dur.append(ql)
                pitch.append(m)
                part.append(pi)
                if tie in ("start", "continue"):
                    open_ties[m] = len(onset) - 1
                else:
                    open_ties.pop(m, None)
    if len(onset) < 16:
        raise ValueError(f"{name}: too few notes")
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    beat_ql = float(ts.beatDuration.quarterLength) if ts else 1.0
    beats_per_bar = int(ts.beatCount) if ts else 4
    if beat_ql <= 0 or beats_per_bar <= 0:
        beat_ql, beats_per_bar = 1.0, 4
    first = 0.0
    measures = list(parts[0].getElementsByClass(stream.Measure)) if score.parts else []
    for m in measures[:2]:
        if float(m.paddingLeft) == 0.0:
            first = float(m.offset)
            break
    mode = key_mode(np.array(pitch), np.array(dur))
    return Piece(name=name, onset_ql=np.array(onset), dur_ql=np.array(dur),
                 pitch=np.array(pitch, np.int64), part=np.array(part, np.int64),
                 n_parts=len(parts), beat_ql=beat_ql, beats_per_bar=beats_per_bar,
                 first_downbeat_ql=first, length_ql=float(np.max(np.add(onset, dur))),
                 mode=mode)


# ----------------------------------------------------------------------------- grid
def beat_grid_ql(piece: Piece, start_ql: float, end_ql: float) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat positions (quarter lengths) in ``[start_ql, end_ql)``."""
    b = piece.beat_ql
    k0 = int(np.ceil((start_ql - piece.first_downbeat_ql) / b - 1e-9))
    k1 = int(np.ceil((end_ql - piece.first_downbeat_ql) / b - 1e-9))
    k = np.arange(k0, k1)
    beats = piece.first_downbeat_ql + k * b
    down = beats[k % piece.beats_per_bar == 0]
    return beats, down


def energy_of(tempo: float, onset_rate: float) -> float:
    """Energy in [0, 1] from tempo (BPM) and score onsets per second (module docstring)."""
    e = 0.5 * (tempo - 70.0) / 80.0 + 0.5 * min(1.0, onset_rate / 6.0)
    return float(np.clip(e, 0.0, 1.0))


def class_of(energy: float) -> int:
    """Coarse style class: 0 calm/slow, 1 moderate, 2 energetic."""
    return 0 if energy < 0.35 else (2 if energy >= 0.6 else 1)


def choose_tempo(piece: Piece, rng: np.random.Generator) -> int:
    """Microseconds per quarter note for a whole-number BPM in ``TEMPO_RANGE`` (per beat)."""
    bpm = float(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    return int(round(60e6 / (bpm * piece.beat_ql)))


def arrange(piece: Piece, rng: np.random.Generator, span_ql: tuple[float, float],
            us: int) -> Arrangement:
    """Instruments, drums and loudness for ``piece`` played over ``span_ql`` at ``us``/quarter."""
    tempo = 60e6 / (us * piece.beat_ql)
    names = sorted(ENSEMBLES)
    if piece.n_parts == 1:                                 # melody: a lead instrument
        names = ["piano", "strings", "woodwinds", "guitar", "epiano", "harp"]
    ens = names[int(rng.integers(len(names)))]
    progs = ENSEMBLES[ens]
    if piece.n_parts == 1:
        programs = [progs[0]]
    else:
        programs = [progs[min(len(progs) - 1, i * len(progs) // piece.n_parts)]
                    for i in range(piece.n_parts)]
        programs[-1] = progs[-1]
    sel = (piece.onset_ql >= span_ql[0]) & (piece.onset_ql < span_ql[1])
    seconds = (span_ql[1] - span_ql[0]) * us / 1e6
    rate = len(np.unique(piece.onset_ql[sel])) / max(seconds, 1e-6)
    cls = class_of(energy_of(tempo, rate))
    roll = rng.random()
    if cls == 0:
        drums = "none" if roll < 0.35 else "soft"
    elif cls == 1:
        drums = "soft" if roll < 0.3 else "groove"
    else:
        drums = "groove" if roll < 0.3 else "drive"
    velocity = (62, 78, 92)[cls] + int(rng.integers(-6, 7))
    transpose = int(rng.integers(-2, 3))
    return Arrangement(piece=piece.name, tempo=tempo, us_per_quarter=us, ensemble=ens,
                       programs=programs, drums=drums, span_ql=span_ql, transpose=transpose,
                       velocity=velocity)


# ----------------------------------------------------------------------------- MIDI
def _drum_hits(piece: Piece, beats: np.ndarray, down: np.ndarray, style: str):
    """(position_ql, key, velocity) drum hits on the beat grid for ``style``."""
    hits = []
    bpb = piece.beats_per_bar
    half = bpb // 2 if bpb >= 4 else 0
    for i, b in enumerate(beats):
        pos = int(round((b - piece.first_downbeat_ql) / piece.beat_ql)) % bpb
        if style == "soft":
            hits.append((b, KICK if pos == 0 else SIDESTICK, 78 if pos == 0 else 58))
            hits.append((b, SHAKER, 50))
            continue
        if pos == 0 or (half and pos == half):
            hits.append((b, KICK, 100 if pos == 0 else 88))
        elif bpb in (2, 4) or pos % 2 == 1 or bpb == 3:
            hits.append((b, SNARE, 84 if style == "groove" else 96))
        hits.append((b, HAT, 70))
        if style == "drive":
            hits.append((b + piece.beat_ql / 2, HAT, 52))
            if pos == 0 and i % (4 * bpb) == 0:
                hits.append((b, CRASH, 80))
    return hits


def midi_events(piece: Piece, arr: Arrangement) -> list[tuple[int, bytes]]:
    """Sorted (tick, message) events for the span, with tick 0 at the span start."""
    s0, s1 = arr.span_ql
    ev: list[tuple[int, int, bytes]] = []          # (tick, order, msg): offs before ons
    ev.append((0, 0, b"\xff\x51\x03" + arr.us_per_quarter.to_bytes(3, "big")))

    def tick(q: float) -> int:
        return int(round((q - s0) * TPQ))

    chans = [c for c in range(16) if c != 9]
    for p, prog in enumerate(arr.programs):
        ch = chans[p % len(chans)]
        ev.append((0, 0, bytes([0xC0 | ch, prog])))
        ev.append((0, 0, bytes([0xB0 | ch, 91, 30])))        # modest reverb send
    sel = (piece.onset_ql >= s0) & (piece.onset_ql < s1)
    for q, d, n, p in zip(piece.onset_ql[sel], piece.dur_ql[sel], piece.pitch[sel],
                          piece.part[sel]):
        ch = chans[int(p) % len(chans)]
        key = int(np.clip(n + arr.transpose, 0, 127))
        on = tick(q)
        off = max(on + 1, tick(min(q + d, s1)) - 6)
        downbeat = abs(((q - piece.first_downbeat_ql) / piece.beat_ql) % piece.beats_per_bar) < 1e-6
        vel = int(np.clip(arr.velocity + (10 if downbeat else 0) - 4 * int(p), 20, 127))
        ev.append((on, 2, bytes([0x90 | ch, key, vel])))
        ev.append((off, 1, bytes([0x80 | ch, key, 0])))
    if arr.drums != "none":
        beats, down = beat_grid_ql(piece, s0, s1)
        for q, key, vel in _drum_hits(piece, beats, down, arr.drums):
            if q < s1:
                ev.append((tick(q), 2, bytes([0x99, key, vel])))
                ev.append((tick(q) + TPQ // 8, 1, bytes([0x89, key, 0])))
    ev.append((tick(s1) + TPQ, 3, b"\xff\x2f\x00"))
    ev.sort(key=lambda e: (e[0], e[1]))
    return [(t, m) for t, _, m in ev]


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(events: list[tuple[int, bytes]]) -> bytes:
    """A format-0 Standard MIDI File from sorted (tick, message) events."""
    data, last = bytearray(), 0
    for t, msg in events:
        data += _vlq(t - last) + msg
        last = t
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TPQ)
            + b"MTrk" + struct.pack(">I", len(data)) + bytes(data))


def render_midi(midi: bytes, sample_rate: int, seconds: float, *, gain: float = 0.5) -> np.ndarray:
    """Render MIDI bytes with FluidSynth to mono float32 ``[1, round(seconds * sr)]``."""
    import soundfile as sf
    n = int(round(seconds * sample_rate))
    with tempfile.TemporaryDirectory(prefix="diffv2m-midi-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate),
               "-o", "synth.cpu-cores=1", "-o", "audio.file.format=float", "-F", str(wav), soundfont(), str(mid)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed: {res.stderr.strip()[-300:]}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    out = np.zeros(n, np.float32)
    out[:min(n, len(mono))] = mono[:n]
    return out[None]


def onsets_ql(piece: Piece, start_ql: float, end_ql: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct score-note onsets in ``[start_ql, end_ql)`` and how many notes start at each."""
    sel = (piece.onset_ql >= start_ql) & (piece.onset_ql < end_ql)
    q, counts = np.unique(np.round(piece.onset_ql[sel], 6), return_counts=True)
    return q, counts
