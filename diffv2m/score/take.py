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
    return Score(notes=notes, ensemble=choose_ensemble(notes, cls, ensemble_name),
                 duration=float(duration))


# ------------------------------------------------------------------ rendering glue
# The one place that calls the renderer (diffv2m.score.render: notes -> MIDI -> FluidSynth).
# Until that module is present, a minimal stand-in renders through the corpus's own MIDI
# writer and FluidSynth program, one track at a time (mono, duplicated to stereo), the mix
# being the sum of the tracks, all scaled by one gain (peak at most 0.5).

def render_audio(score: Score, sample_rate: int, soundfont: str | None = None) -> np.ndarray:
    """``[2, round(duration * sample_rate)]`` float32."""
    try:
        from .render import render_score
    except ImportError:
        return _standin_render(score, sample_rate)
    return np.asarray(render_score(score, sample_rate=sample_rate, soundfont=soundfont), np.float32)


def render_track_stems(score: Score, sample_rate: int,
                       soundfont: str | None = None) -> dict[str, np.ndarray]:
    try:
        from .render import render_stems
    except ImportError:
        return _standin_stems(score, sample_rate)
    return render_stems(score, sample_rate=sample_rate, soundfont=soundfont)


def midi_file_bytes(score: Score) -> bytes:
    """The score as a Standard MIDI File."""
    try:
        from .render import write_midi  # noqa: F401
    except ImportError:
        return _standin_midi(score)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory(prefix="diffv2m-mid-") as tmp:
        path = Path(tmp) / "take.mid"
        write_midi(score, path)
        return path.read_bytes()


_CH = {"melody": 0, "accompaniment": 1, "bass": 2, "drums": 9}


def _standin_midi(score: Score) -> bytes:
    from ..data.music import TPQ, midi_bytes
    us = 500000                                         # 120 BPM: ticks = seconds * 960
    tps = TPQ * 1e6 / us
    ev: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + us.to_bytes(3, "big"))]
    for t, ch in _CH.items():
        if t in score.ensemble.programs:
            ev.append((0, 0, bytes([0xC0 | ch, int(score.ensemble.programs[t])])))
    for n in score.notes:
        ch = _CH[n.track]
        on = int(round(n.start * tps))
        off = max(on + 1, int(round(n.end * tps)))
        ev.append((on, 2, bytes([0x90 | ch, n.pitch, n.velocity])))
        ev.append((off, 1, bytes([0x80 | ch, n.pitch, 0])))
    ev.append((int(round(score.duration * tps)) + TPQ, 3, b"\xff\x2f\x00"))
    ev.sort(key=lambda e: (e[0], e[1]))
    return midi_bytes([(t, m) for t, _, m in ev])


def _standin_raw(score: Score, sample_rate: int) -> np.ndarray:
    from ..data.music import render_midi
    mono = render_midi(_standin_midi(score), sample_rate, score.duration)
    return np.concatenate([mono, mono]).astype(np.float32)


def _standin_gain(mix: np.ndarray) -> np.float32:
    peak = float(np.max(np.abs(mix)))
    return np.float32(0.5 / peak if peak > 0.5 else 1.0)


def _standin_stems(score: Score, sample_rate: int) -> dict[str, np.ndarray]:
    """Each track rendered alone (FluidSynth processes side by side; a track without notes
    is silence), all scaled by the gain of their sum (the mix)."""
    from concurrent.futures import ThreadPoolExecutor
    n = int(round(score.duration * sample_rate))
    parts = {t: [x for x in score.notes if x.track == t] for t in TRACKS}
    busy = [t for t in TRACKS if parts[t]]
    with ThreadPoolExecutor(max_workers=max(1, len(busy))) as pool:
        done = dict(zip(busy, pool.map(
            lambda t: _standin_raw(Score(parts[t], score.ensemble, score.duration), sample_rate),
            busy)))
    stems = {t: done.get(t, np.zeros((2, n), np.float32)) for t in TRACKS}
    gain = _standin_gain(sum(stems.values()))
    return {t: a * gain for t, a in stems.items()}


def _standin_render(score: Score, sample_rate: int) -> np.ndarray:
    stems = _standin_stems(score, sample_rate)
    mix = np.zeros_like(stems[TRACKS[0]])
    for t in TRACKS:
        mix += stems[t]
    return mix


def check_renderer(soundfont: str | None = None) -> None:
    """Fail with one line, before any work, when the take could not be rendered."""
    from pathlib import Path

    from ..errors import UserError
    try:
        from .render import find_soundfont
    except ImportError:
        from ..data.music import check_tools
        if soundfont is not None and not Path(soundfont).is_file():
            raise UserError(f"{soundfont}: no such SoundFont file") from None
        check_tools()
        return
    find_soundfont(soundfont)
