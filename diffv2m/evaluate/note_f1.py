"""Note-F1 between two note lists (numpy only): how many notes two scores share.

Two notes match when they have the same pitch (and, with ``by_track``, the same track) and
their onsets are at most ``onset_tol`` seconds apart (offsets ignored, the usual onset-only
transcription F1; 50 ms by default, as mir_eval).  Matching is one to one and maximal per
pitch (:func:`diffv2m.evaluate.alignment.count_matches`).  Drum notes count like the others
(their pitch is the General-MIDI key); ``pitched_only`` leaves them out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from .alignment import count_matches


def _groups(notes, by_track: bool, pitched_only: bool) -> dict:
    g: dict = defaultdict(list)
    for n in notes:
        if pitched_only and n.track == "drums":
            continue
        g[(n.track, n.pitch) if by_track else (n.track == "drums", n.pitch)].append(n.start)
    return g


def note_f1(estimate: Iterable, reference: Iterable, *, onset_tol: float = 0.05,
            by_track: bool = False, pitched_only: bool = False) -> dict[str, float]:
    """``{"precision", "recall", "f1", "matched", "estimated", "reference"}``; both empty -> 1."""
    est = _groups(estimate, by_track, pitched_only)
    ref = _groups(reference, by_track, pitched_only)
    n_est = sum(len(v) for v in est.values())
    n_ref = sum(len(v) for v in ref.values())
    matched = sum(count_matches(est[k], ref[k], onset_tol) for k in est if k in ref)
    if n_est == 0 and n_ref == 0:
        p = r = f = 1.0
    else:
        p = matched / n_est if n_est else 0.0
        r = matched / n_ref if n_ref else 0.0
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f, "matched": float(matched),
            "estimated": float(n_est), "reference": float(n_ref)}
