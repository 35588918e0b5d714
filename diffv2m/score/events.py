"""Note events: the one representation of a score that every stage hands on.

A take of the score family is a list of :class:`Note` plus the :class:`Ensemble` that plays
it. The decoder's note probabilities become notes (``diffv2m.score.decoding``), notes become
a Standard MIDI File, audio and stems (``diffv2m.score.render``), and the evaluation compares
note lists (``diffv2m.evaluate``). Times are seconds from the take's start.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The tracks of the multi-track piano roll, in roll order. Drums use General-MIDI percussion
# keys (channel 10) for ``pitch``.
TRACKS: tuple[str, ...] = ("melody", "accompaniment", "bass", "drums")


@dataclass(frozen=True)
class Note:
    track: str          # one of TRACKS
    pitch: int          # MIDI note number 0..127 (GM percussion key on the drum track)
    start: float        # seconds
    end: float          # seconds, > start
    velocity: int       # 1..127


@dataclass(frozen=True)
class Ensemble:
    """Who plays which track: a General-MIDI program (0-based) per pitched track."""
    name: str
    programs: dict[str, int] = field(default_factory=dict)   # track -> GM program


@dataclass
class Score:
    notes: list[Note]
    ensemble: Ensemble
    duration: float                 # seconds (the take's length; notes may end before it)
    tempo_bpm: float | None = None  # informative (MIDI tempo meta event); times are absolute
    key: str | None = None          # the notes' key, e.g. "C minor" (diffv2m.score.key)
    mode_from: str | None = None    # who chose the mode: "picture" (the mood reader), "user"
    mood_reader: str | None = None  # the reader's id when the picture chose it (provenance)
