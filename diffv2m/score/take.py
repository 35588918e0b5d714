"""A score-family take: the decoder's note probabilities per window -> one :class:`Score` ->
audio (numpy only; FluidSynth renders).

Stitching (:func:`stitch_rolls`): windows overlap like the audio family's; each seam is a hard
cut at the roll frame of :func:`diffv2m.synthesis.crossfade_point` (the strongest predicted
onset in the overlap): frames before it come from the earlier window, frames from it on from
the later one.  The whole roll is then decoded once by the rule of
:func:`diffv2m.score.roll.roll_to_notes`, so a note never starts twice at a seam, and the
melody and bass are made one line each (:func:`monophonic`: of the notes starting in one
frame the most probable stays; a note ends where the next begins).

Instruments (:func:`choose_ensemble`): the ensemble follows the music's mood: the mode of the
generated notes (which the DiT takes from the colour grade) and the style class:

=========  =======================  ========================
class      major                    minor
=========  =======================  ========================
0 calm     harp                     strings
1 moderate piano                    woodwinds
2 energy   brass                    organ
=========  =======================  ========================

``--ensemble NAME`` (one of :func:`ensemble_names`, the corpus's ensembles) overrides it.

Tempo: the score's ``tempo_bpm`` is estimated from its own onsets
(:func:`diffv2m.score.tempo.estimate_tempo`); the MIDI file and the take's metadata carry it.
"""
from __future__ import annotations

import numpy as np

from .events import TRACKS, Ensemble, Note, Score
from .roll import roll_to_notes

MONOPHONIC = ("melody", "bass")        # tracks decoded one note at a time

MOOD_ENSEMBLES = {(0, "major"): "harp", (0, "minor"): "strings",
                  (1, "major"): "piano", (1, "minor"): "woodwinds",
                  (2, "major"): "brass", (2, "minor"): "organ"}


def ensemble_names() -> list[str]:
    from ..data.music import ENSEMBLES
    return sorted(ENSEMBLES)


def ensemble(name: str) -> Ensemble:
    """The corpus's ensemble ``name`` as track programs (top voice -> melody, the middle of
    the list -> accompaniment, its last entry -> bass)."""
    from ..data.music import ENSEMBLES
    from ..errors import UserError
    if name not in ENSEMBLES:
        raise UserError(f"unknown ensemble {name!r}; choose one of {', '.join(ensemble_names())}")
    progs = ENSEMBLES[name]
    return Ensemble(name=name, programs={"melody": progs[0],
                                         "accompaniment": progs[len(progs) // 2],
                                         "bass": progs[-1]})


def notes_mode(notes: list[Note]) -> str:
    """``"major"``/``"minor"`` of the pitched notes (the corpus's key finding); major if none."""
    from ..data.music import key_mode
    pitched = [n for n in notes if n.track != "drums"]
    if len(pitched) < 2:
        return "major"
    return key_mode(np.array([n.pitch for n in pitched]),
                    np.array([n.end - n.start for n in pitched]))


def choose_ensemble(notes: list[Note], cls: int, override: str | None = None) -> Ensemble:
    if override:
        return ensemble(override)
    return ensemble(MOOD_ENSEMBLES[(int(np.clip(cls, 0, 2)), notes_mode(notes))])


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


def score_from_probabilities(prob: np.ndarray, *, duration: float, rate: float,
                             pitch_low: int, cls: int, ensemble_name: str | None = None) -> Score:
    notes = roll_to_notes(prob, rate=rate, pitch_low=pitch_low)
    if MONOPHONIC:
        notes = monophonic(notes, prob, MONOPHONIC, rate=rate, pitch_low=pitch_low)
    notes = [n for n in notes if n.start < duration]
    notes = [Note(n.track, n.pitch, n.start, min(n.end, duration), n.velocity) for n in notes]
    from .tempo import estimate_tempo
    return Score(notes=notes, ensemble=choose_ensemble(notes, cls, ensemble_name),
                 duration=float(duration), tempo_bpm=estimate_tempo(notes, duration, rate))


# ------------------------------------------------------------------ rendering
# The one place generation calls the renderer (diffv2m.score.render: notes -> MIDI ->
# FluidSynth, 48 kHz stereo by default, loudness normalised).

def render_audio(score: Score, sample_rate: int, soundfont: str | None = None) -> np.ndarray:
    """``[2, round(duration * sample_rate)]`` float32."""
    from .render import render_score
    return np.asarray(render_score(score, sample_rate=sample_rate, soundfont=soundfont), np.float32)


def render_track_stems(score: Score, sample_rate: int,
                       soundfont: str | None = None) -> dict[str, np.ndarray]:
    from .render import render_stems
    return render_stems(score, sample_rate=sample_rate, soundfont=soundfont)


def midi_file_bytes(score: Score) -> bytes:
    """The score as a Standard MIDI File."""
    from .midi import midi_bytes
    return midi_bytes(score)


def check_renderer(soundfont: str | None = None) -> None:
    """Fail with one line, before any work, when the take could not be rendered."""
    from .render import find_soundfont
    find_soundfont(soundfont)
