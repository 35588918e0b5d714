"""Accuracy of a predicted low-resolution ODF against the music's ground truth (numpy only).

The Diff-V2M rhythm predictor (Ji et al. 2025, arXiv 2511.09090) outputs one onset value per
second; its target is the music's low-resolution ODF (:func:`diffv2m.features.rhythm.odf_lowres`).
The paper trains it with a regression loss but publishes no accuracy figure, so the project
reports, for curves ``p`` (predicted) and ``g`` (ground truth) of ``T`` seconds:

* ``mae = mean |p - g|`` and ``rmse = sqrt(mean (p - g)^2)``, after scaling each curve to
  [0, 1] with :func:`odf_normalise` (negative values -> 0, divide by the maximum), the scale
  the model is trained on; pass ``normalise=False`` for raw values;
* ``pearson``: the correlation coefficient of ``p`` and ``g`` (nan when either is constant);
* peak F1: the paper's ODF is the strongest onset peak in each second (0 where none), so a
  second counts as a *peak second* when its value, scaled to [0, 1], is at least
  ``peak_threshold`` (0.5); predicted and true peak seconds are matched one to one within
  ``peak_tol`` seconds (default 0: the same second); precision, recall and F1 of that
  matching (both 1 when neither curve has a peak second).

Baseline (:func:`motion_baseline_odf`): a predictor that has no model at all, only the video's
cues: ``odf_normalise(motion + cut)`` where ``motion`` is the per-second motion energy scaled to
[0, 1] (the "pseudo beat") and ``cut`` is 1 in seconds that contain a scene cut.  A learned
predictor should beat it; both are scored by :func:`odf_metrics` in the same way.
"""
from __future__ import annotations

import math

import numpy as np

from .alignment import count_matches


def odf_normalise(x) -> np.ndarray:
    """Clip at 0 and divide by the maximum (all zeros stay zeros); float64 ``[T]``."""
    a = np.clip(np.asarray(x, np.float64).reshape(-1), 0.0, None)
    top = a.max() if a.size else 0.0
    return a / top if top > 0 else a


def peak_seconds(curve, threshold: float = 0.5) -> np.ndarray:
    """Indices of the seconds whose [0, 1]-scaled value is at least ``threshold``."""
    c = odf_normalise(curve)
    return np.flatnonzero(c >= threshold) if c.max(initial=0.0) > 0 else np.zeros(0, np.int64)


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, np.float64).reshape(-1)
    g = np.asarray(true, np.float64).reshape(-1)
    n = min(len(p), len(g))
    if n == 0:
        raise ValueError("empty ODF curve")
    return p[:n], g[:n]


def pearson(a, b) -> float:
    """Pearson correlation; nan when either input is constant."""
    a, b = _pair(a, b)
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float(np.sum(da * da)) * float(np.sum(db * db)))
    return float(np.sum(da * db) / den) if den > 0 else float("nan")


def odf_metrics(pred, true, *, normalise: bool = True, peak_threshold: float = 0.5,
                peak_tol: int = 0) -> dict:
    """MAE, RMSE, Pearson r and peak precision/recall/F1 of ``pred`` against ``true``.

    The longer curve is cut to the shorter length (``seconds`` in the result).
    """
    p, g = _pair(pred, true)
    if normalise:
        p, g = odf_normalise(p), odf_normalise(g)
    err = p - g
    pp, gp = peak_seconds(p, peak_threshold), peak_seconds(g, peak_threshold)
    hits = count_matches(pp.astype(np.float64), gp.astype(np.float64), float(peak_tol))
    prec = hits / len(pp) if len(pp) else (1.0 if len(gp) == 0 else 0.0)
    rec = hits / len(gp) if len(gp) else (1.0 if len(pp) == 0 else 0.0)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"seconds": int(len(p)), "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err * err))), "pearson": pearson(p, g),
            "peak_precision": float(prec), "peak_recall": float(rec), "peak_f1": float(f1),
            "n_peaks_pred": int(len(pp)), "n_peaks_true": int(len(gp)),
            "normalised": bool(normalise)}


def motion_baseline_odf(motion_per_second, cut_indicator=None) -> np.ndarray:
    """The no-model heuristic: ``odf_normalise(motion + cut)`` per second, ``[T]``."""
    m = odf_normalise(motion_per_second)
    if cut_indicator is not None:
        c = (np.asarray(cut_indicator, np.float64).reshape(-1) > 0).astype(np.float64)
        n = min(len(m), len(c))
        m = m[:n] + c[:n]
    return odf_normalise(m)


def evaluate_rhythm(pred, true, motion_per_second=None, cut_indicator=None, **kw) -> dict:
    """``{"predictor": odf_metrics(pred, true), "motion_baseline": ...}`` (baseline when cues given)."""
    out = {"predictor": odf_metrics(pred, true, **kw)}
    if motion_per_second is not None or cut_indicator is not None:
        base = motion_baseline_odf(
            motion_per_second if motion_per_second is not None else np.zeros(len(true)),
            cut_indicator)
        out["motion_baseline"] = odf_metrics(base, true, **kw)
    return out
