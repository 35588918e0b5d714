"""A :class:`~diffv2m.score.events.Score` as a Standard MIDI File, and back (mido; torch-free).

Writing (:func:`midi_bytes`, :func:`write_midi`): format 1.  Track 0 holds the tempo
(``score.tempo_bpm``: a generated take's own, :mod:`diffv2m.score.tempo`; ``DEFAULT_TEMPO_BPM``
when unknown), a 4/4 time signature and, when the score knows it, its key signature
(``score.key``, :mod:`diffv2m.score.key`); then one track per entry of ``TRACKS``, named after
it, on its own channel (``CHANNELS``: drums on MIDI channel 10, i.e. 9 counted from 0) with
its General-MIDI program from ``score.ensemble.programs`` (``DEFAULT_PROGRAMS`` where the
ensemble names none; for drums the number is the GM drum kit) and a reverb send of
``REVERB_SEND`` (CC 91, as the corpus renders).  Times are quantised to ticks at that tempo:
:func:`ticks_per_quarter` picks the resolution (at least ``TPQ``) that puts every frame of the
roll grid (24 frames/s) on a whole tick, so a generated take's note times survive exactly;
other times are within half a tick (about 1 ms).

Reading (:func:`read_midi`): any SMF; a note's track is the name of its MIDI track when that is
one of ``TRACKS``, else its channel's (``CHANNELS``), else ``accompaniment``; channel 10 is
always drums.
"""
from __future__ import annotations

import io
from pathlib import Path

from ..errors import UserError
from .events import TRACKS, Ensemble, Note, Score

TPQ = 480                                   # MIDI ticks per quarter note (at least)
MAX_TPQ = 32767                             # the SMF header's 15 bits
DEFAULT_TEMPO_BPM = 120.0
CHANNELS: dict[str, int] = {"melody": 0, "accompaniment": 1, "bass": 2, "drums": 9}
DEFAULT_PROGRAMS: dict[str, int] = {"melody": 0, "accompaniment": 0, "bass": 32, "drums": 0}
REVERB_SEND = 30

assert set(CHANNELS) == set(TRACKS), "every track needs a MIDI channel"


def programs(score: Score) -> dict[str, int]:
    """GM program (drum kit for drums) of every track: the ensemble's, else the default."""
    progs = dict(DEFAULT_PROGRAMS)
    for track, prog in score.ensemble.programs.items():
        if track not in CHANNELS:
            raise ValueError(f"ensemble {score.ensemble.name!r}: unknown track {track!r}")
        if not 0 <= int(prog) <= 127:
            raise ValueError(f"ensemble {score.ensemble.name!r}: program {prog} not in 0..127")
        progs[track] = int(prog)
    return progs


def check_notes(score: Score) -> None:
    """ValueError on a note the MIDI/synth layers cannot carry (a programming error)."""
    for n in score.notes:
        if n.track not in CHANNELS:
            raise ValueError(f"note on unknown track {n.track!r}")
        if not (0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and n.end > n.start >= 0):
            raise ValueError(f"invalid note {n}")


def tempo_us(score: Score) -> int:
    bpm = score.tempo_bpm if score.tempo_bpm and score.tempo_bpm > 0 else DEFAULT_TEMPO_BPM
    return int(round(60e6 / bpm))


def ticks_per_quarter(us: int, grid_rate: float | None = None) -> int:
    """The smallest multiple of the ticks that put every frame of ``grid_rate`` (default the
    roll's 24 frames/s) on a whole tick at ``us`` per quarter, from ``TPQ`` up; ``TPQ`` when
    none fits in ``MAX_TPQ``."""
    from fractions import Fraction
    from .roll import FRAME_RATE
    rate = Fraction(grid_rate if grid_rate is not None else FRAME_RATE).limit_denominator(1001)
    frames_per_quarter = Fraction(int(us), 1_000_000) * rate
    unit = frames_per_quarter.numerator        # ticks per quarter must be a multiple of it
    tpq = unit * -(-TPQ // unit)
    return tpq if tpq <= MAX_TPQ else TPQ


def midi_bytes(score: Score) -> bytes:
    """The score as a format-1 Standard MIDI File (see the module docstring)."""
    import mido

    check_notes(score)
    us = tempo_us(score)
    tpq = ticks_per_quarter(us)

    def tick(t: float) -> int:
        return int(round(t * 1e6 / us * tpq))

    end = max(0, tick(score.duration))
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name=f"diffv2m {score.ensemble.name}", time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=us, time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    if score.key:
        from .key import midi_key
        meta.append(mido.MetaMessage("key_signature", key=midi_key(score.key), time=0))
    meta.append(mido.MetaMessage("end_of_track", time=end))
    mid.tracks.append(meta)
    progs = programs(score)
    for track in TRACKS:
        ch = CHANNELS[track]
        tr = mido.MidiTrack()
        tr.append(mido.MetaMessage("track_name", name=track, time=0))
        tr.append(mido.Message("program_change", channel=ch, program=progs[track], time=0))
        if track != "drums":
            tr.append(mido.Message("control_change", channel=ch, control=91, value=REVERB_SEND,
                                   time=0))
        events = []                                 # (tick, order, key, message): offs first
        for n in score.notes:
            if n.track != track:
                continue
            on = tick(n.start)
            off = max(tick(n.end), on + 1)
            events.append((on, 1, n.pitch, mido.Message("note_on", channel=ch, note=n.pitch,
                                                        velocity=n.velocity)))
            events.append((off, 0, n.pitch, mido.Message("note_off", channel=ch, note=n.pitch,
                                                         velocity=0)))
        events.sort(key=lambda e: e[:3])
        last = 0
        for t, _, _, msg in events:
            tr.append(msg.copy(time=t - last))
            last = t
        tr.append(mido.MetaMessage("end_of_track", time=max(0, end - last)))
        mid.tracks.append(tr)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def write_midi(score: Score, path) -> None:
    """Write :func:`midi_bytes` to ``path`` atomically; a missing folder is a UserError."""
    from ..atomic import atomic_write_bytes
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    data = midi_bytes(score)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"{path}: cannot write MIDI file ({exc.strerror or exc})") from None


def read_midi(path) -> Score:
    """The notes of a Standard MIDI File as a Score (times in seconds, tempo map applied).

    ``ensemble.programs`` holds each track's first program change; ``tempo_bpm`` the first
    tempo; ``duration`` the file's length.  An unreadable file is a UserError."""
    import mido

    path = Path(path)
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise UserError(f"{path}: not a readable MIDI file ({exc})") from None
    by_channel = {ch: t for t, ch in CHANNELS.items()}
    names: dict[int, str] = {}                       # MIDI track index -> Score track
    for i, tr in enumerate(mid.tracks):
        for msg in tr:
            if msg.type == "track_name" and msg.name in TRACKS:
                names[i] = msg.name
                break
    # merge the tracks ourselves so each message keeps its track index
    tempo, first_tempo = 500000, None
    timeline = []
    for i, tr in enumerate(mid.tracks):
        t = 0
        for msg in tr:
            t += msg.time
            timeline.append((t, i, msg))
    timeline.sort(key=lambda e: (e[0], e[1]))
    now, last_tick = 0.0, 0
    open_notes: dict[tuple[str, int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []
    progs: dict[str, int] = {}
    for t, i, msg in timeline:
        now += mido.tick2second(t - last_tick, mid.ticks_per_beat, tempo)
        last_tick = t
        if msg.type == "set_tempo":
            tempo = msg.tempo
            first_tempo = first_tempo or msg.tempo
            continue
        if not hasattr(msg, "channel"):
            continue
        track = ("drums" if msg.channel == 9 else
                 names.get(i) or by_channel.get(msg.channel) or "accompaniment")
        if msg.type == "program_change":
            progs.setdefault(track, msg.program)
        elif msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((track, msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            started = open_notes.get((track, msg.channel, msg.note))
            if started:
                start, vel = started.pop(0)
                if now > start:
                    notes.append(Note(track, msg.note, start, now, vel))
    notes.sort(key=lambda n: (n.start, TRACKS.index(n.track), n.pitch))
    return Score(notes=notes, ensemble=Ensemble(path.stem, progs), duration=float(mid.length),
                 tempo_bpm=60e6 / first_tempo if first_tempo else None)
