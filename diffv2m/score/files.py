"""What a score take hands out besides the mix: the MIDI file and one WAV per track (stems).

Both paths are checked before any work starts (:func:`check_outputs`: the folder must exist;
a stems folder must be new or empty), and written without ever leaving a partial result under
the final name: the MIDI file through :func:`diffv2m.atomic.atomic_path`, the stems into a
temporary folder beside the target that is renamed onto it once every stem is written.
Stems are ``DIR/<track>.wav`` for every track of :data:`~diffv2m.score.events.TRACKS`, all the
mix's length and rate (a track without notes is silence), with the take's metadata.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
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


def write_stems(folder: str | os.PathLike, stems: dict[str, Any], sample_rate: int,
                metadata: dict[str, Any] | None = None) -> list[Path]:
    """Write ``{track: [C, N]}`` as ``folder/<track>.wav`` (temporary folder, then renamed)."""
    from .. import media
    final = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        for track, audio in stems.items():
            media.write_audio(tmp / f"{track}.wav", audio, sample_rate,
                              metadata={**(metadata or {}), "stem": track})
        os.chmod(tmp, 0o777 & ~_umask())
        if final.is_dir():
            final.rmdir()                    # empty (checked); a new file there fails loudly
        os.rename(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return [final / f"{t}.wav" for t in stems]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
