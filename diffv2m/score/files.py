"""What a score take hands out besides the mix: the MIDI file and one WAV per track (stems).

Both paths are checked before any work starts (:func:`check_outputs`: the folder must exist;
a stems folder must be new or empty); the job's output transaction
(:mod:`diffv2m.output_transaction`) then holds the MIDI file and every stem beside the take,
so they appear together or not at all. Stems are ``DIR/<track>.wav`` (:func:`stem_paths`) for every track of :data:`~diffv2m.score.events.TRACKS`, all the
mix's length and rate (a track without notes is silence), with the take's metadata.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError

MIDI_SUFFIXES = (".mid", ".midi")


def check_outputs(midi: str | os.PathLike | None, stems: str | os.PathLike | None) -> None:
    """One-line UserError for a MIDI/stems path the take could not be written to."""
    if midi is not None:
        m = Path(midi)
        if m.suffix.lower() not in MIDI_SUFFIXES:
            raise UserError(f"{m}: a MIDI file must end in .mid or .midi")
        if not m.parent.is_dir():
            raise UserError(f"{m}: folder {m.parent} does not exist")
        if m.is_dir():
            raise UserError(f"{m}: is a folder, not a MIDI file")
    if stems is not None:
        s = Path(stems)
        if not s.parent.is_dir():
            raise UserError(f"{s}: folder {s.parent} does not exist")
        if s.exists() and not s.is_dir():
            raise UserError(f"{s}: exists and is not a folder (--stems wants a folder)")
        if s.is_dir() and any(s.iterdir()):
            raise UserError(f"{s}: the stems folder is not empty; choose a new or empty folder")


def write_midi_file(path: str | os.PathLike, data: bytes) -> Path:
    from ..atomic import atomic_write_bytes
    atomic_write_bytes(path, data)
    return Path(path)


def stem_paths(folder: str | os.PathLike) -> dict[str, Path]:
    """Where each track's stem goes: ``folder/<track>.wav`` for every track of TRACKS."""
    from .events import TRACKS
    return {t: Path(folder) / f"{t}.wav" for t in TRACKS}


def write_stems(paths: dict[str, str | os.PathLike], stems: dict[str, Any], sample_rate: int,
                metadata: dict[str, Any] | None = None) -> list[Path]:
    """Write each ``{track: [C, N]}`` stem to ``paths[track]`` (temporaries of the job's
    output transaction, which renames them all together with the take)."""
    from .. import media
    for track, audio in stems.items():
        media.write_audio(paths[track], audio, sample_rate,
                          metadata={**(metadata or {}), "stem": track})
    return [Path(paths[t]) for t in stems]
