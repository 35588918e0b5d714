"""Note-F1: how many notes two scores share, with ``mir_eval.transcription`` as the judge.

Two notes match when they have the same pitch (within a quarter tone, so the same MIDI key)
and their onsets are at most ``onset_tol`` seconds apart (offsets ignored: the usual
onset-only transcription F1, 50 ms by default); matching is one to one and maximal
(``mir_eval.transcription.match_notes``).  Precision is matched / estimated notes, recall
matched / reference notes, F1 their harmonic mean.

Two ways in:

* :func:`note_f1` on ``Note`` objects (score family: seed against seed, a roll's round trip):
  with ``by_track`` a match also needs the same track; drum notes (General-MIDI keys, not
  pitches) only match drum notes, and ``pitched_only`` leaves them out.  Both lists empty
  count as a perfect 1.
* :func:`intervals_f1` on ``(intervals [M, 2], MIDI pitches [M])`` arrays (transcriptions,
  :func:`diffv2m.evaluate.transcription.score_notes`); both lists empty give ``None``: there
  was nothing to judge.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

ONSET_TOL = 0.05


def matched_notes(ref_intervals, ref_pitches, est_intervals, est_pitches,
                  onset_tol: float = ONSET_TOL) -> int:
    """How many notes mir_eval matches one to one (same pitch, onsets within ``onset_tol``)."""
    import mir_eval
    ri, rp = np.asarray(ref_intervals, np.float64).reshape(-1, 2), np.asarray(ref_pitches)
    ei, ep = np.asarray(est_intervals, np.float64).reshape(-1, 2), np.asarray(est_pitches)
    if len(rp) == 0 or len(ep) == 0:
        return 0
    # mir_eval wants strictly positive durations (offsets play no part here)
    ri = np.stack([ri[:, 0], np.maximum(ri[:, 1], ri[:, 0] + 1e-3)], axis=1)
    ei = np.stack([ei[:, 0], np.maximum(ei[:, 1], ei[:, 0] + 1e-3)], axis=1)
    return len(mir_eval.transcription.match_notes(
        ri, mir_eval.util.midi_to_hz(rp.astype(np.float64)), ei,
        mir_eval.util.midi_to_hz(ep.astype(np.float64)), onset_tolerance=onset_tol,
        offset_ratio=None))


def _scores(matched: int, n_est: int, n_ref: int) -> tuple[float, float, float]:
    p = matched / n_est if n_est else 0.0
    r = matched / n_ref if n_ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def intervals_f1(ref_intervals, ref_pitches, est_intervals, est_pitches,
                 onset_tol: float = ONSET_TOL) -> dict:
    """``{"n_reference", "n_estimate", "precision", "recall", "f1"}`` of two note arrays;
    the scores are None when both are empty."""
    n_ref, n_est = len(np.asarray(ref_pitches)), len(np.asarray(est_pitches))
    out = {"n_reference": int(n_ref), "n_estimate": int(n_est)}
    if n_ref == 0 and n_est == 0:
        return {**out, "precision": None, "recall": None, "f1": None}
    p, r, f = _scores(matched_notes(ref_intervals, ref_pitches, est_intervals, est_pitches,
                                    onset_tol), n_est, n_ref)
    return {**out, "precision": float(p), "recall": float(r), "f1": float(f)}


def _groups(notes, by_track: bool, pitched_only: bool) -> dict:
    g: dict = defaultdict(list)
    for n in notes:
        if pitched_only and n.track == "drums":
            continue
        g[(n.track, n.pitch) if by_track else (n.track == "drums", n.pitch)].append(n.start)
    return g


def note_f1(estimate: Iterable, reference: Iterable, *, onset_tol: float = ONSET_TOL,
            by_track: bool = False, pitched_only: bool = False) -> dict[str, float]:
    """``{"precision", "recall", "f1", "matched", "estimated", "reference"}`` of two lists
    of ``Note``; both empty -> 1."""
    est = _groups(estimate, by_track, pitched_only)
    ref = _groups(reference, by_track, pitched_only)
    n_est = sum(len(v) for v in est.values())
    n_ref = sum(len(v) for v in ref.values())
    matched = 0
    for key in est.keys() & ref.keys():      # one pitch (and track) at a time
        onsets_e, onsets_r = np.asarray(est[key]), np.asarray(ref[key])
        matched += matched_notes(np.stack([onsets_r, onsets_r], 1), np.full(len(onsets_r), key[1]),
                                 np.stack([onsets_e, onsets_e], 1), np.full(len(onsets_e), key[1]),
                                 onset_tol)
    if n_est == 0 and n_ref == 0:
        p = r = f = 1.0
    else:
        p, r, f = _scores(matched, n_est, n_ref)
    return {"precision": p, "recall": r, "f1": f, "matched": float(matched),
            "estimated": float(n_est), "reference": float(n_ref)}
