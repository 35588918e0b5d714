"""Symbolic-music measures of generated scores against held-out scores (MGEval, Yang & Lerch
2018, "On the evaluation of generative models in music").  Torch-free, numpy/scipy only.

Per score (pitched tracks; the drum track is left out), :func:`features`:

* ``pitch_class_histogram``: 12 bins, note counts, normalised to sum 1;
* ``pitch_range``: highest minus lowest MIDI pitch;
* ``used_pitches``: number of distinct pitches;
* ``mean_ioi``: mean inter-onset interval (s) between distinct onsets (10 ms merge);
* ``note_length_histogram``: 12 log-spaced bins of note length from 1/32 s to 4 s, normalised;
* ``polyphony``: mean number of pitched notes sounding at each distinct onset;
* ``pitch_class_transitions``: 12x12 matrix of pitch-class moves between successive notes
  of each track, normalised to sum 1 (flattened).

Per feature and set (:func:`overlap`): MGEval's procedure.  Euclidean distances between the
clips' feature values within the reference set (intra) and from every generated clip to every
reference clip (inter); each set of distances is smoothed by a Gaussian kernel density; the
report gives the overlapped area OA of the two densities (1 = the generated clips sit among
the references as the references sit among themselves) and KL(intra || inter).

:func:`mgeval_report` puts the model beside two controls: random notes on the same 24
frames/s grid (same note count, track and duration of each generated clip; must score far
worse) and the held-out music itself (one half of the references against the other).
"""
from __future__ import annotations

import numpy as np

from ..score.events import Ensemble, Note, Score

FEATURES = ("pitch_class_histogram", "pitch_range", "used_pitches", "mean_ioi",
            "note_length_histogram", "polyphony", "pitch_class_transitions")
LENGTH_BINS = np.geomspace(1 / 32, 4.0, 13)
GRID_FPS = 24.0
RANDOM_PITCHES = (36, 96)


def _pitched(score: Score) -> list[Note]:
    return sorted((n for n in score.notes if n.track != "drums"),
                  key=lambda n: (n.start, n.pitch))


def features(score: Score) -> dict[str, np.ndarray]:
    """The feature values of one score (see the module docstring); zeros for no notes."""
    notes = _pitched(score)
    out: dict[str, np.ndarray] = {}
    if not notes:
        out["pitch_class_histogram"] = np.zeros(12)
        out["note_length_histogram"] = np.zeros(len(LENGTH_BINS) - 1)
        out["pitch_class_transitions"] = np.zeros(144)
        for k in ("pitch_range", "used_pitches", "mean_ioi", "polyphony"):
            out[k] = np.zeros(1)
        return out
    pitch = np.array([n.pitch for n in notes])
    start = np.array([n.start for n in notes])
    end = np.array([n.end for n in notes])
    pch = np.bincount(pitch % 12, minlength=12).astype(np.float64)
    out["pitch_class_histogram"] = pch / pch.sum()
    out["pitch_range"] = np.array([float(pitch.max() - pitch.min())])
    out["used_pitches"] = np.array([float(len(np.unique(pitch)))])
    onsets = np.unique(np.round(start / 0.01)) * 0.01
    out["mean_ioi"] = np.array([float(np.mean(np.diff(onsets))) if len(onsets) > 1 else 0.0])
    lh = np.histogram(np.clip(end - start, LENGTH_BINS[0], LENGTH_BINS[-1] - 1e-9),
                      bins=LENGTH_BINS)[0].astype(np.float64)
    out["note_length_histogram"] = lh / lh.sum()
    sounding = [int(np.sum((start <= t + 1e-6) & (end > t + 1e-6))) for t in onsets]
    out["polyphony"] = np.array([float(np.mean(sounding))])
    trans = np.zeros((12, 12))
    for track in {n.track for n in notes}:
        seq = [n.pitch % 12 for n in notes if n.track == track]
        for a, b in zip(seq[:-1], seq[1:]):
            trans[a, b] += 1
    out["pitch_class_transitions"] = (trans / trans.sum() if trans.sum() else trans).reshape(-1)
    return out


def _distances(a: list[np.ndarray], b: list[np.ndarray] | None = None) -> np.ndarray:
    A = np.stack(a)
    if b is None:
        i, j = np.triu_indices(len(A), k=1)
        return np.linalg.norm(A[i] - A[j], axis=1)
    B = np.stack(b)
    return np.linalg.norm(A[:, None, :] - B[None, :, :], axis=2).reshape(-1)


def _kde(x: np.ndarray, grid: np.ndarray, bw: float) -> np.ndarray:
    """Gaussian kernel density of ``x`` on the uniform ``grid``, bandwidth ``bw``, area 1."""
    z = (grid[:, None] - x[None, :]) / bw
    p = np.exp(-0.5 * z * z).sum(axis=1)
    return p / ((p.sum() * (grid[1] - grid[0])) or 1.0)


def _quantiles(x: np.ndarray, most: int = 4000) -> np.ndarray:
    """At most ``most`` evenly spaced order statistics of ``x`` (bounds the KDE's memory)."""
    x = np.sort(np.asarray(x, np.float64))
    return x if len(x) <= most else x[np.linspace(0, len(x) - 1, most).round().astype(int)]


def overlap(intra: np.ndarray, inter: np.ndarray) -> dict:
    """OA and KL(intra || inter) of two samples of distances (Gaussian KDE, Scott bandwidth)."""
    if len(intra) < 2 or len(inter) < 1:
        return {"oa": None, "kl": None}
    intra, inter = _quantiles(intra), _quantiles(inter)
    both = np.concatenate([intra, inter])
    spread = float(np.std(both))
    scale = spread if spread > 0 else max(float(np.max(np.abs(both))), 1.0) * 1e-3
    bw = scale * len(both) ** (-1 / 5)
    grid = np.linspace(both.min() - 4 * bw, both.max() + 4 * bw, 1024)
    p, q = _kde(intra, grid, bw), _kde(inter, grid, bw)
    dx = grid[1] - grid[0]
    oa = float(np.minimum(p, q).sum() * dx)
    eps = 1e-12
    kl = float((p * np.log((p + eps) / (q + eps))).sum() * dx)
    return {"oa": min(1.0, oa), "kl": max(0.0, kl)}


def compare(generated: list[Score], reference: list[Score]) -> dict:
    """Per feature OA/KL of generated vs reference; ``mean_oa`` over the features."""
    if len(reference) < 2 or not generated:
        return {"skipped": f"needs >= 2 reference and >= 1 generated scores, "
                           f"have {len(reference)} and {len(generated)}"}
    fg = [features(s) for s in generated]
    fr = [features(s) for s in reference]
    per = {}
    for name in FEATURES:
        per[name] = overlap(_distances([f[name] for f in fr]),
                            _distances([f[name] for f in fg], [f[name] for f in fr]))
    oas = [v["oa"] for v in per.values() if v["oa"] is not None]
    return {"n_generated": len(generated), "n_reference": len(reference),
            "mean_oa": float(np.mean(oas)) if oas else None, "features": per}


def random_notes_like(score: Score, rng: np.random.Generator, fps: float = GRID_FPS) -> Score:
    """The control: as many notes as ``score`` on each track, at random grid frames with
    random pitches (``RANDOM_PITCHES``; drums keep their keys) and lengths of 1-24 frames."""
    frames = max(1, int(round(score.duration * fps)))
    notes = []
    for n in score.notes:
        f0 = int(rng.integers(frames))
        length = int(rng.integers(1, 25))
        pitch = n.pitch if n.track == "drums" else int(rng.integers(*RANDOM_PITCHES))
        notes.append(Note(n.track, pitch, f0 / fps, min(frames, f0 + length) / fps or 1 / fps,
                          n.velocity))
    notes = [n if n.end > n.start else Note(n.track, n.pitch, n.start, n.start + 1 / fps,
                                            n.velocity) for n in notes]
    return Score(sorted(notes, key=lambda n: (n.start, n.pitch)), Ensemble("random"),
                 score.duration, score.tempo_bpm)


def mgeval_report(generated: list[Score], reference: list[Score], seed: int = 0) -> dict:
    """The model, the random-notes control and the held-out halves, side by side."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(reference))
    half = len(reference) // 2
    return {
        "model": compare(generated, reference),
        "random_notes": compare([random_notes_like(s, rng) for s in generated], reference),
        "held_out_halves": compare([reference[i] for i in order[:half]],
                                   [reference[i] for i in order[half:]]),
    }
