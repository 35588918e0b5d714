"""A score-family take: the decoder's note probabilities per window -> one :class:`Score` ->
audio (numpy only; FluidSynth renders).

Stitching (:func:`stitch_rolls`): windows overlap like the audio family's; each seam is a hard
cut at the roll frame of :func:`diffv2m.synthesis.crossfade_point` (the strongest predicted
onset in the overlap): frames before it come from the earlier window, frames from it on from
the later one.  The whole roll is then decoded once by the rule of
:func:`diffv2m.score.roll.roll_to_notes`, so a note never starts twice at a seam, then made
playable in three documented steps (:func:`playable_notes`):

1. *hold*: a pitched note sounds at least ``MIN_HELD_FRAMES`` frames (4, 167 ms) unless the
   same pitch of its track strikes again sooner: the decoder's sustain fades early, and a
   blip of one or two frames is a click, not a note;
2. *unisons*: an accompaniment note that doubles a melody or bass note (same pitch, onsets at
   most one frame apart) is dropped: one key struck twice at once is heard as one note;
3. *one line* for the melody and bass (:func:`monophonic`): of the notes starting in one frame
   the most probable stays; a note ends where the next begins.

Instruments (:func:`choose_ensemble`): the ensemble follows the music's mood: the mode of the
generated notes (which the DiT takes from the colour grade) and the style class:

=========  ===================================  ====================================
class      major                                minor
=========  ===================================  ====================================
0 calm     harp (harp, vibraphone, upright)     epiano (Rhodes, finger bass)
1 moderate piano                                pastoral (oboe, harp, upright bass)
2 energy   brass (trumpet, brass section, bass) guitar (nylon, steel, upright bass)
=========  ===================================  ====================================

The mood ensembles are articulate ones on purpose: the music's onsets are what land on the
cuts, and slow-attack timbres (string pads, choir, organ) smear them; they stay one
``--ensemble`` away (``strings``, ``choir``, ``organ``...).  ``--ensemble NAME`` (one of
:func:`ensemble_names`: the corpus's ensembles and the score family's ``ORCHESTRATIONS``)
overrides the mood.

Tempo: the score's ``tempo_bpm`` is estimated from its own onsets
(:func:`diffv2m.score.tempo.estimate_tempo`); the MIDI file and the take's metadata carry it.
"""
from __future__ import annotations

import numpy as np

from .events import TRACKS, Ensemble, Note, Score
from .roll import roll_to_notes

MONOPHONIC = ("melody", "bass")        # tracks decoded one note at a time
MIN_HELD_FRAMES = 4                    # shortest pitched note (frames of the roll)

# The score family's own ensembles (melody, accompaniment, bass GM programs, 0-based), beside
# the corpus's (diffv2m.data.music.ENSEMBLES, which the corpus builder draws from).  "brass"
# replaces the corpus's (trombone and tuba under the trumpet smear the onsets).
ORCHESTRATIONS: dict[str, tuple[int, int, int]] = {
    "pastoral": (68, 46, 32),          # oboe, harp, acoustic bass
    "brass": (56, 61, 32),             # trumpet, brass section, acoustic bass
}

MOOD_ENSEMBLES = {(0, "major"): "harp", (0, "minor"): "epiano",
                  (1, "major"): "piano", (1, "minor"): "pastoral",
                  (2, "major"): "brass", (2, "minor"): "guitar"}


def ensemble_names() -> list[str]:
    from ..data.music import ENSEMBLES
    return sorted(set(ENSEMBLES) | set(ORCHESTRATIONS))


def ensemble(name: str) -> Ensemble:
    """Ensemble ``name`` as track programs: one of ``ORCHESTRATIONS`` as it stands, else the
    corpus's (its top voice -> melody, the middle of its list -> accompaniment, its last
    entry -> bass)."""
    from ..data.music import ENSEMBLES
    from ..errors import UserError
    if name in ORCHESTRATIONS:
        progs = ORCHESTRATIONS[name]
    elif name in ENSEMBLES:
        full = ENSEMBLES[name]
        progs = (full[0], full[len(full) // 2], full[-1])
    else:
        raise UserError(f"unknown ensemble {name!r}; choose one of {', '.join(ensemble_names())}")
    return Ensemble(name=name, programs=dict(zip(("melody", "accompaniment", "bass"), progs)))


def presets(ensemble_name: str | None = None) -> list[tuple[int, int]]:
    """The SoundFont presets ((bank, GM program); bank 128: drum kits) a take may play: the
    ensemble ``ensemble_name``'s, else those of every ensemble of the mood table (which of
    them plays is known only once the picture's mode is read); and the drum kit."""
    from .midi import DEFAULT_PROGRAMS
    names = [ensemble_name] if ensemble_name else sorted(set(MOOD_ENSEMBLES.values()))
    pitched = sorted({p for n in names for p in ensemble(n).programs.values()})
    return [(0, p) for p in pitched] + [(128, DEFAULT_PROGRAMS["drums"])]


def notes_mode(notes: list[Note]) -> str:
    """``"major"``/``"minor"`` of the pitched notes (the corpus's key finding,
    :func:`diffv2m.score.key.notes_key`); major if fewer than two."""
    from .key import notes_key
    return notes_key(notes)[1]


def choose_ensemble(notes: list[Note], cls: int, override: str | None = None,
                    mode: str | None = None) -> Ensemble:
    """``override``, else the mood table's ensemble for the style class and ``mode`` (default:
    the notes' own)."""
    if override:
        return ensemble(override)
    return ensemble(MOOD_ENSEMBLES[(int(np.clip(cls, 0, 2)), mode or notes_mode(notes))])


def stitch_rolls(pieces: list[tuple[int, np.ndarray]], odf: np.ndarray, rate: float,
                 total_frames: int, window: int) -> np.ndarray:
    """Join window probabilities ``(start_second, [4, 3, P, F])`` into ``[4, 3, P, total]``."""
    from ..synthesis import crossfade_point
    out = np.zeros(pieces[0][1].shape[:-1] + (total_frames,), np.float32)
    lo = 0
    for k, (start, prob) in enumerate(pieces):
        f0 = int(round(start * rate))
        if k + 1 < len(pieces):
            seam = int(round(crossfade_point(odf, pieces[k + 1][0], start + window, 0.0) * rate))
        else:
            seam = total_frames
        hi = min(seam, total_frames, f0 + prob.shape[-1])
        if hi > lo:
            out[..., lo:hi] = prob[..., lo - f0:hi - f0]
        lo = max(lo, hi)
    return out


def monophonic(notes: list[Note], prob: np.ndarray, tracks: tuple[str, ...], *, rate: float,
               pitch_low: int) -> list[Note]:
    """On ``tracks``, one note at a time: of the notes starting in one frame the one with the
    highest onset probability stays, and a note ends where the next one starts."""
    from .roll import ONSET
    keep: list[Note] = [n for n in notes if n.track not in tracks]
    for t in tracks:
        ti = TRACKS.index(t)
        best: dict[int, Note] = {}
        for n in notes:
            if n.track != t:
                continue
            k = int(round(n.start * rate))
            p = float(prob[ti, ONSET, n.pitch - pitch_low, k])
            if k not in best or p > float(prob[ti, ONSET, best[k].pitch - pitch_low, k]):
                best[k] = n
        line = [best[k] for k in sorted(best)]
        for a, b in zip(line, line[1:] + [None]):
            end = a.end if b is None else min(a.end, b.start)
            keep.append(Note(a.track, a.pitch, a.start, end, a.velocity))
    keep.sort(key=lambda n: (n.start, TRACKS.index(n.track), n.pitch))
    return keep


def hold(notes: list[Note], *, rate: float, min_frames: int = MIN_HELD_FRAMES) -> list[Note]:
    """Pitched notes last at least ``min_frames`` frames, but never past the next onset of
    the same track and pitch (drum hits are left as they are)."""
    later: dict[tuple[str, int], float] = {}
    out: list[Note] = []
    for n in sorted(notes, key=lambda n: n.start, reverse=True):
        key = (n.track, n.pitch)
        end = n.end
        if n.track != "drums":
            end = max(end, min(n.start + min_frames / rate, later.get(key, np.inf)))
        later[key] = n.start
        out.append(Note(n.track, n.pitch, n.start, end, n.velocity))
    out.sort(key=lambda n: (n.start, TRACKS.index(n.track), n.pitch))
    return out


def drop_unisons(notes: list[Note], *, rate: float) -> list[Note]:
    """Without the accompaniment notes that double a melody or bass note (same pitch, onset
    frames at most one apart)."""
    struck = {(int(round(n.start * rate)), n.pitch) for n in notes
              if n.track in ("melody", "bass")}
    return [n for n in notes if n.track != "accompaniment"
            or not any((int(round(n.start * rate)) + d, n.pitch) in struck for d in (-1, 0, 1))]


def playable_notes(prob: np.ndarray, *, rate: float, pitch_low: int) -> list[Note]:
    """The decoding rule, then hold, unisons and one line (the module's three steps)."""
    notes = roll_to_notes(prob, rate=rate, pitch_low=pitch_low)
    notes = drop_unisons(hold(notes, rate=rate), rate=rate)
    if MONOPHONIC:
        notes = monophonic(notes, prob, MONOPHONIC, rate=rate, pitch_low=pitch_low)
    return notes


def score_from_probabilities(prob: np.ndarray, *, duration: float, rate: float,
                             pitch_low: int, cls: int, ensemble_name: str | None = None,
                             mode: str | None = None, mode_from: str | None = None,
                             mood_reader: str | None = None) -> Score:
    """The take's notes (:func:`playable_notes`), in ``mode`` when one is given
    (:func:`diffv2m.score.key.to_mode`; ``mode_from`` says who chose it, ``mood_reader``
    which reader when it was the picture), with the mood's
    ensemble, the key and the tempo."""
    from .key import key_name, notes_key, to_mode
    from .tempo import estimate_tempo
    notes = playable_notes(prob, rate=rate, pitch_low=pitch_low)
    notes = [n for n in notes if n.start < duration]
    notes = [Note(n.track, n.pitch, n.start, min(n.end, duration), n.velocity) for n in notes]
    if mode is not None:
        notes = to_mode(notes, mode)
    return Score(notes=notes, ensemble=choose_ensemble(notes, cls, ensemble_name, mode),
                 duration=float(duration), tempo_bpm=estimate_tempo(notes, duration, rate),
                 key=key_name(*notes_key(notes)), mode_from=mode_from, mood_reader=mood_reader)


def midi_file_bytes(score: Score) -> bytes:
    """The score as a Standard MIDI File."""
    from .midi import midi_bytes
    return midi_bytes(score)


def check_renderer(soundfont: str | None = None) -> None:
    """Fail with one line, before any work, when the take could not be rendered."""
    from .render import find_soundfont
    find_soundfont(soundfont)
