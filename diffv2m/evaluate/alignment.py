"""Rhythmic alignment between music and video events (numpy and scipy only).

Events are times in seconds.  Two events *match* when they are at most ``tol`` seconds apart.

Beat scores (:func:`beat_scores`)
    The video-to-music literature scores music beats against "visual beats" (cuts and motion
    peaks) with two ratios: the Beats Coverage Score (BCS) and the Beats Hit Score (BHS),
    introduced with CMT (Di et al. 2021, "Video Background Music Generation with
    Controllable Music Transformer", ACM MM) and reused by D2M-GAN (Zhu et al. 2022) and
    LORIS (Yu et al. 2023).  Two forms circulate:

    * the original: ``coverage = B_music / B_visual`` (how many beats the music has relative
      to the video; may exceed 1) and ``hit = B_aligned / B_visual``;
    * the form in LORIS's released evaluation code, used here as ``bcs`` and ``bhs``:
      ``BCS = B_aligned / B_music`` (the share of music beats that land on a visual beat)
      and ``BHS = B_aligned / B_visual`` (the share of visual beats hit by a music beat), with
      their harmonic mean as ``f1``.

    Both forms are returned (``coverage_ratio`` is the original coverage).  Those codes count
    beats in 1-second (or 0.2-second) bins; here ``B_aligned`` is the size of a maximum
    one-to-one matching of music to visual beats within ``tol`` seconds, so a music beat is
    never counted against two visual beats and the scores do not depend on bin edges.

Onset/cut hit rate (:func:`onset_cut_hit_rate`)
    The share of cuts that have at least one music onset within ``tol`` seconds.  A dense
    onset track hits most cuts by chance, so the rate is only meaningful next to a baseline:
    :func:`random_shift_baseline` rotates the *same* onsets circularly by random offsets
    (uniform over the clip's duration, ``n_shifts`` of them, seeded), which keeps the music's
    onset density and inner timing but breaks its timing relative to the video.  It returns
    the mean and standard deviation of the shifted hit rates, a z-score and the one-sided
    empirical p-value ``(1 + #{shifted >= observed}) / (1 + n_shifts)`` (Phipson & Smyth
    2010's unbiased permutation p-value).

Visual beats (:func:`visual_beats`)
    Cuts plus peaks of the motion-energy curve: peaks found with ``scipy.signal.find_peaks``
    on the curve scaled to [0, 1], with prominence ``prominence`` and at least ``min_gap``
    seconds apart; a motion peak within ``min_gap`` of a cut is dropped (the cut itself makes
    the motion spike).  This follows CMT's "visual beats" (cuts and local maxima of motion
    speed) in spirit; the thresholds are this project's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TOL = 0.1


def _events(x) -> np.ndarray:
    a = np.asarray(x if x is not None else [], np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    return np.sort(a)


def count_matches(a, b, tol: float = DEFAULT_TOL) -> int:
    """Size of a maximum one-to-one matching of events ``a`` to ``b`` with ``|a_i - b_j| <= tol``.

    Greedy on both sorted lists (match the earliest compatible pair, otherwise drop the
    earlier event); for points on a line with a symmetric window this is optimal.
    """
    a, b = _events(a), _events(b)
    i = j = hits = 0
    eps = 1e-9
    while i < len(a) and j < len(b):
        d = a[i] - b[j]
        if abs(d) <= tol + eps:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return hits


@dataclass(frozen=True)
class BeatScores:
    bcs: float             # aligned / music beats
    bhs: float             # aligned / visual beats
    f1: float              # harmonic mean of bcs and bhs
    coverage_ratio: float  # music beats / visual beats (CMT's original coverage)
    hits: int
    n_music: int
    n_visual: int
    tol: float


def beat_scores(music_beats, visual_beats, tol: float = DEFAULT_TOL) -> BeatScores:
    """BCS, BHS and F1 of music beats against visual beats (see the module docstring).

    Ratios with an empty denominator are 0 (``coverage_ratio`` is ``inf`` when the video
    has no beats and the music has some).
    """
    m, v = _events(music_beats), _events(visual_beats)
    hits = count_matches(m, v, tol)
    bcs = hits / len(m) if len(m) else 0.0
    bhs = hits / len(v) if len(v) else 0.0
    f1 = 2 * bcs * bhs / (bcs + bhs) if bcs + bhs > 0 else 0.0
    cov = len(m) / len(v) if len(v) else (float("inf") if len(m) else 0.0)
    return BeatScores(float(bcs), float(bhs), float(f1), float(cov), int(hits), len(m), len(v),
                      float(tol))


def onset_cut_hit_rate(onsets, cuts, tol: float = DEFAULT_TOL) -> float:
    """Share of ``cuts`` that have a music onset within ``tol`` seconds (nan without cuts)."""
    o, c = _events(onsets), _events(cuts)
    if len(c) == 0:
        return float("nan")
    if len(o) == 0:
        return 0.0
    idx = np.searchsorted(o, c)
    left = np.abs(c - o[np.clip(idx - 1, 0, len(o) - 1)])
    right = np.abs(o[np.clip(idx, 0, len(o) - 1)] - c)
    return float(np.mean(np.minimum(left, right) <= tol + 1e-9))


@dataclass(frozen=True)
class ShiftBaseline:
    observed: float
    mean: float
    std: float
    z: float
    p_value: float
    n_shifts: int
    seed: int


def random_shift_baseline(onsets, cuts, duration: float, *, tol: float = DEFAULT_TOL,
                          n_shifts: int = 200, seed: int = 0) -> ShiftBaseline:
    """Observed onset/cut hit rate against the same onsets rotated by random offsets.

    Each shift ``s ~ U(0, duration)`` maps onset ``t`` to ``(t + s) mod duration``.  ``z`` is
    ``(observed - mean) / std`` (nan when std is 0); ``p_value`` is the one-sided empirical
    p-value of the observed rate being this high by chance.
    """
    if not duration or duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if n_shifts < 1:
        raise ValueError(f"n_shifts must be at least 1, got {n_shifts}")
    o, c = _events(onsets), _events(cuts)
    observed = onset_cut_hit_rate(o, c, tol)
    if len(c) == 0:
        nan = float("nan")
        return ShiftBaseline(nan, nan, nan, nan, nan, int(n_shifts), int(seed))
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(0.0, duration, size=n_shifts)
    rates = np.array([onset_cut_hit_rate(np.mod(o + s, duration), c, tol) for s in shifts])
    mean, std = float(rates.mean()), float(rates.std())
    z = (observed - mean) / std if std > 0 else float("nan")
    p = (1 + int(np.sum(rates >= observed - 1e-12))) / (1 + n_shifts)
    return ShiftBaseline(float(observed), mean, std, float(z), float(p), int(n_shifts),
                         int(seed))


def visual_beats(cut_times, motion_curve=None, *, prominence: float = 0.3,
                 min_gap: float = 0.25) -> np.ndarray:
    """Merge cuts and motion-energy peaks into one sorted list of visual beat times.

    ``motion_curve`` is ``(times, values)`` (e.g. ``VideoFeatures.motion_curve``) or None.
    """
    from scipy.signal import find_peaks

    cuts = _events(cut_times)
    peaks = np.zeros(0, np.float64)
    if motion_curve is not None:
        t, v = (np.asarray(a, np.float64).reshape(-1) for a in motion_curve)
        if t.shape != v.shape:
            raise ValueError(f"motion curve times {t.shape} and values {v.shape} differ")
        if len(v) >= 3 and np.ptp(v) > 0:
            vn = (v - v.min()) / np.ptp(v)
            step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
            dist = max(1, int(round(min_gap / step))) if step > 0 else 1
            idx, _ = find_peaks(vn, prominence=prominence, distance=dist)
            peaks = t[idx]
    if len(cuts) and len(peaks):
        near = np.min(np.abs(peaks[:, None] - cuts[None, :]), axis=1) < min_gap
        peaks = peaks[~near]
    return np.sort(np.concatenate([cuts, peaks]))
