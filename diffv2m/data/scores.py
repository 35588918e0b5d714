"""The corpus's clips as scores: the exact notes FluidSynth rendered, as note events and rolls.

The notes come from the very MIDI events the builder renders (:func:`music.midi_events` of the
piece's :class:`music.Arrangement`), so a clip's score and its audio agree event for event.
Voices map to tracks by position: the top voice is the melody, the bottom voice (of two or
more) the bass, the voices between the accompaniment; the General-MIDI drum channel is the
drum track.  A clip keeps the notes that start inside it (times from the clip's start, ends
clipped to its length).

Each clip's score is stored beside its media as ``clips/ID.roll.npz``: the note list
(``track`` index, ``pitch``, ``start``, ``end``, ``velocity``), the programs and ensemble, and
the full-range roll (``[4, 3, 128, frames]`` uint8 at 24 frames/s; the velocity channel in
1..127).  The builder is deterministic by seed, so :func:`write_rolls` re-plans an existing
corpus (no audio or video rendered) and writes the sidecars it lacks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..score.events import TRACKS, Ensemble, Note, Score
from ..score.roll import FRAME_RATE, VELOCITY, notes_to_roll
from . import music

ROLL_SUFFIX = ".roll.npz"
_CHANNELS = [c for c in range(16) if c != 9]           # music.midi_events' channel order


def track_of_part(part: int, n_parts: int) -> str:
    if part == 0:
        return "melody"
    return "bass" if part == n_parts - 1 else "accompaniment"


def ensemble_of(piece: music.Piece, arr: music.Arrangement) -> Ensemble:
    programs: dict[str, int] = {}
    for p in range(piece.n_parts - 1, -1, -1):           # the top voice of a track decides
        programs[track_of_part(p, piece.n_parts)] = int(arr.programs[p])
    return Ensemble(name=arr.ensemble, programs=programs)


def arrangement_notes(piece: music.Piece, arr: music.Arrangement) -> list[Note]:
    """Every note of the rendered span (seconds from the span's start), from its MIDI events."""
    part_of_channel = {_CHANNELS[p % len(_CHANNELS)]: p for p in range(piece.n_parts - 1, -1, -1)}
    spt = arr.sec_per_ql / music.TPQ                       # seconds per tick
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
    notes: list[Note] = []
    for tick, msg in music.midi_events(piece, arr):
        kind, ch = msg[0] & 0xF0, msg[0] & 0x0F
        if kind not in (0x80, 0x90) or msg[0] == 0xFF:
            continue
        key = (ch, msg[1])
        if kind == 0x90 and msg[2] > 0:
            sounding.setdefault(key, []).append((tick, msg[2]))
        elif sounding.get(key):
            on, vel = sounding[key].pop(0)
            track = "drums" if ch == 9 else track_of_part(part_of_channel[ch], piece.n_parts)
            notes.append(Note(track=track, pitch=int(msg[1]), start=on * spt, end=tick * spt,
                              velocity=int(vel)))
    notes.sort(key=lambda n: (n.start, TRACKS.index(n.track), n.pitch))
    return notes


def clip_score(notes: list[Note], ensemble: Ensemble, start: float, seconds: float,
               tempo: float | None = None) -> Score:
    """The notes starting in ``[start, start + seconds)``, shifted to the clip's start."""
    out = [Note(track=n.track, pitch=n.pitch, start=n.start - start,
                end=min(n.end - start, seconds), velocity=n.velocity)
           for n in notes if start - 1e-9 <= n.start < start + seconds - 1e-9]
    return Score(notes=out, ensemble=ensemble, duration=seconds, tempo_bpm=tempo)


def roll_path(out_dir: Path, rec: dict) -> Path:
    return Path(out_dir) / "clips" / f"{rec['id']}{ROLL_SUFFIX}"


def save_score(path: Path, score: Score, rate: float = FRAME_RATE) -> Path:
    """A clip's score as ``.roll.npz`` (notes, ensemble, full-range uint8 roll), atomically."""
    frames = int(round(score.duration * rate))
    roll = notes_to_roll(score.notes, frames, rate=rate)
    roll[:, VELOCITY] *= 127.0
    n = score.notes
    programs = np.array([score.ensemble.programs.get(t, -1) for t in TRACKS], np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, roll=np.round(roll).astype(np.uint8),
                track=np.array([TRACKS.index(x.track) for x in n], np.int64),
                pitch=np.array([x.pitch for x in n], np.int64),
                start=np.array([x.start for x in n], np.float64),
                end=np.array([x.end for x in n], np.float64),
                velocity=np.array([x.velocity for x in n], np.int64),
                programs=programs, ensemble=np.array(score.ensemble.name),
                duration=np.float64(score.duration), frame_rate=np.float64(rate),
                tempo=np.float64(score.tempo_bpm or 0.0))
    return Path(path)


def load_score(path: str | Path) -> tuple[Score, np.ndarray]:
    """``(score, roll)``: the sidecar's notes and its roll as float32 (velocity in [0, 1])."""
    from ..errors import UserError
    try:
        with np.load(path, allow_pickle=False) as z:
            roll = z["roll"].astype(np.float32)
            roll[:, VELOCITY] /= 127.0
            notes = [Note(track=TRACKS[int(t)], pitch=int(p), start=float(s), end=float(e),
                          velocity=int(v))
                     for t, p, s, e, v in zip(z["track"], z["pitch"], z["start"], z["end"],
                                              z["velocity"])]
            progs = {t: int(p) for t, p in zip(TRACKS, z["programs"]) if p >= 0}
            score = Score(notes=notes, ensemble=Ensemble(str(z["ensemble"]), progs),
                          duration=float(z["duration"]), tempo_bpm=float(z["tempo"]) or None)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not a clip score ({exc})") from None
    return score, roll


def write_plan_rolls(plan, out_dir: Path, clip_seconds: float, *, force: bool = False) -> list[str]:
    """Write the missing ``.roll.npz`` of one piece plan's clips; returns the ids written."""
    todo = [r for r in plan.records if force or not roll_path(out_dir, r).is_file()]
    if not todo:
        return []
    notes = arrangement_notes(plan.piece, plan.arrangement)
    ens = ensemble_of(plan.piece, plan.arrangement)
    for rec in todo:
        save_score(roll_path(out_dir, rec),
                   clip_score(notes, ens, float(rec["start"]), clip_seconds,
                              float(plan.arrangement.tempo)))
    return [r["id"] for r in todo]


def write_rolls(out_dir: str | Path, *, progress=None) -> int:
    """Re-plan an existing corpus (its ``corpus.json`` settings, no rendering) and write every
    clip's missing score sidecar; returns how many were written."""
    import json

    from ..errors import UserError
    from .corpus import SETTINGS_FILE, CorpusSettings, plan_piece
    from .manifest import read_manifest
    out_dir = Path(out_dir)
    try:
        settings = CorpusSettings.from_dict(json.loads((out_dir / SETTINGS_FILE).read_text()))
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{out_dir / SETTINGS_FILE}: no readable corpus settings") from None
    records = read_manifest(out_dir / "manifest.jsonl")
    want = {r["id"] for r in records if not roll_path(out_dir, r).is_file()}
    indices = sorted({int(i.split("-")[0]) for i in want})
    names = music.candidate_pieces(settings.seed)
    written = 0
    for k, index in enumerate(indices):
        if progress:
            progress("scores", k, len(indices))
        plan = plan_piece(settings, index, names[index])
        if plan is None:
            continue
        plan.records = [r for r in plan.records if r["id"] in want]
        written += len(write_plan_rolls(plan, out_dir, settings.clip_seconds))
    if progress:
        progress("scores", len(indices), len(indices))
    return written


def clip_roll_file(clip: dict) -> Path:
    """Where a manifest clip's score sidecar lies: beside its audio, ``ID.roll.npz``."""
    return Path(clip["audio"]).parent / f"{clip['id']}{ROLL_SUFFIX}"
