"""Visual rhythm cues: scene cuts, motion energy and the per-second "pseudo beat".

All measures work on small frames (longer side ``ANALYSIS_SIDE`` pixels, area-averaged), so
they are cheap and insensitive to resolution, compression noise and film grain.

* Frame difference (for cuts): per-channel RGB histograms with 16 *soft* (linearly
  interpolated) bins, compared by half the L1 distance, averaged over channels: 0 for the
  same colour distribution, 1 for disjoint ones.  Soft bins keep a flat area that jitters
  across a bin edge from looking like a cut; histograms ignore where things are, so camera
  or object motion inside a shot barely moves the measure, while a cut to another shot does.
  The score is the smaller of that global distance and the median distance over a 4x4 grid
  of blocks: a cut changes most of the picture, so a flash, a sign or an object that
  changes one corner (large global change, small median) is not taken for a cut, and
  fast motion that stirs every block (large median, small global change) is not either.
* Cuts: a difference is a cut when it is a local maximum, above an absolute floor, and far
  above its neighbourhood (local median + ``z`` robust standard deviations from the median
  absolute deviation over about a second), with a minimum gap between cuts.  The adaptive
  part keeps steady busy motion (noise, pans) from firing; the floor handles static shots,
  whose neighbourhood has no spread at all.
* Motion energy: mean absolute difference of consecutive grey 32x32 thumbnails, in [0, 1].
* Pseudo beat: per-second mean motion energy (cut transitions left out, they are a cue of
  their own), divided by its maximum over the selection so that it lies in [0, 1].
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .image import resize, shrink_to, to_grey

ANALYSIS_SIDE = 64
HIST_BINS = 16
BLOCK_GRID = 4
THUMB_SIDE = 32


# ----------------------------------------------------------------------------- histograms
def _soft_histograms(x: np.ndarray, bins: int) -> np.ndarray:
    """``[M, P, 3]`` pixel groups (0..255) -> ``[M, 3, bins]`` soft histograms summing to 1."""
    m = x.shape[0]
    pos = np.clip(x / 255.0 * bins - 0.5, 0.0, bins - 1)        # bin centres at k + 0.5
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, bins - 1)
    frac = (pos - lo).astype(np.float64)
    offset = (np.arange(m)[:, None, None] * 3 + np.arange(3)[None, None, :]) * bins
    size = m * 3 * bins
    h = (np.bincount((lo + offset).ravel(), (1.0 - frac).ravel(), minlength=size)
         + np.bincount((hi + offset).ravel(), frac.ravel(), minlength=size))
    h = h.reshape(m, 3, bins)
    return (h / np.maximum(h.sum(axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def _small(frames: np.ndarray) -> np.ndarray:
    a = np.asarray(frames)
    return shrink_to(a[None] if a.ndim == 3 else a, ANALYSIS_SIDE)


def channel_histograms(frames: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """``[N,H,W,3]`` frames (0..255) -> ``[N,3,bins]`` soft-binned histograms, each summing to 1."""
    x = _small(frames)
    return _soft_histograms(x.reshape(x.shape[0], -1, 3), bins)


def block_histograms(frames: np.ndarray, grid: int = BLOCK_GRID,
                     bins: int = HIST_BINS) -> np.ndarray:
    """``[N,H,W,3]`` -> ``[N, grid*grid, 3, bins]``: the histograms of a grid of picture blocks."""
    x = _small(frames)
    n, h, w, _ = x.shape
    bh, bw = max(h // grid, 1), max(w // grid, 1)
    gh, gw = min(grid, h), min(grid, w)
    x = x[:, : gh * bh, : gw * bw].reshape(n, gh, bh, gw, bw, 3).transpose(0, 1, 3, 2, 4, 5)
    return _soft_histograms(x.reshape(n * gh * gw, bh * bw, 3), bins).reshape(n, gh * gw, 3, bins)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Half L1 distance between ``[..., 3, bins]`` histograms, averaged over channels (0..1)."""
    return (0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)).mean(axis=-1)


def cut_score(hist_a, blocks_a, hist_b, blocks_b) -> np.ndarray:
    """How much looks like a cut between two frames: min(global, median block) distance."""
    glob = histogram_distance(hist_a, hist_b)
    local = np.median(histogram_distance(blocks_a, blocks_b), axis=-1)
    return np.minimum(glob, local)


def thumbnails(frames: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``[N,H,W,3]`` frames -> ``[N,side,side]`` grey thumbnails in [0, 1] (float32)."""
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    return to_grey(resize(a, side, side)) / 255.0


# ----------------------------------------------------------------------------- per frame
def frame_differences(frames: np.ndarray) -> np.ndarray:
    """:func:`cut_score` of each frame against the one before (``[N]``, first is 0), 0..1."""
    small = _small(frames)
    h, b = channel_histograms(small), block_histograms(small)
    d = np.zeros(len(h), np.float32)
    if len(h) > 1:
        d[1:] = cut_score(h[1:], b[1:], h[:-1], b[:-1])
    return d


def motion_energy(frames: np.ndarray) -> np.ndarray:
    """Mean absolute grey change of each frame to the one before (``[N]``, first is 0), 0..1."""
    th = thumbnails(_small(frames))
    m = np.zeros(len(th), np.float32)
    if len(th) > 1:
        m[1:] = np.abs(th[1:] - th[:-1]).mean(axis=(1, 2))
    return m


class FrameAnalyser:
    """Streaming form of :func:`frame_differences` and :func:`motion_energy`.

    ``push(t, frame)`` one frame at a time; only the previous frame's histograms and thumbnail
    are kept, so memory does not grow with the video (only three floats per frame).
    """

    def __init__(self) -> None:
        self._times: list[float] = []
        self._diff: list[float] = []
        self._motion: list[float] = []
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def push(self, t: float, frame: np.ndarray) -> None:
        small = _small(frame)
        cur = (channel_histograms(small)[0], block_histograms(small)[0], thumbnails(small)[0])
        if self._prev is None:
            self._diff.append(0.0)
            self._motion.append(0.0)
        else:
            hist, blocks, thumb = self._prev
            self._diff.append(float(cut_score(cur[0], cur[1], hist, blocks)))
            self._motion.append(float(np.abs(cur[2] - thumb).mean()))
        self._times.append(float(t))
        self._prev = cur

    @property
    def times(self) -> np.ndarray:
        return np.asarray(self._times, np.float64)

    @property
    def differences(self) -> np.ndarray:
        return np.asarray(self._diff, np.float32)

    @property
    def motion(self) -> np.ndarray:
        return np.asarray(self._motion, np.float32)


# ----------------------------------------------------------------------------- cuts
def _frame_rate(times: np.ndarray) -> float:
    if len(times) < 2:
        return 1.0
    step = float(np.median(np.diff(times)))
    return 1.0 / step if step > 0 else 1.0


def cuts_from_differences(times: Sequence[float], differences: Sequence[float], *,
                          min_abs: float = 0.1, z: float = 6.0, window_s: float = 1.0,
                          min_gap_s: float = 0.5, sigma_floor: float = 0.01) -> np.ndarray:
    """Cut times (the first frame of each new shot) from per-frame differences.

    A frame ``i`` is a cut when ``d[i]`` is a local maximum, ``d[i] >= min_abs``, and
    ``d[i] > median + z * max(1.4826 * MAD, sigma_floor)`` over a window of ``window_s``
    seconds around it; cuts closer than ``min_gap_s`` keep only the strongest.
    """
    t = np.asarray(times, np.float64)
    d = np.asarray(differences, np.float64)
    if t.shape != d.shape:
        raise ValueError(f"times {t.shape} and differences {d.shape} differ in shape")
    if len(d) < 2:
        return np.zeros(0, np.float64)
    half = max(3, int(round(window_s * _frame_rate(t) / 2)))
    size = 2 * half + 1
    from scipy import ndimage          # here, not at import: a new seed reads cached features
    med = ndimage.median_filter(d, size=size, mode="nearest")
    mad = ndimage.median_filter(np.abs(d - med), size=size, mode="nearest")
    thr = np.maximum(min_abs, med + z * np.maximum(1.4826 * mad, sigma_floor))
    left = np.concatenate([[-np.inf], d[:-1]])
    right = np.concatenate([d[1:], [-np.inf]])
    cand = np.flatnonzero((d > thr) & (d >= left) & (d >= right))
    cand = cand[cand > 0]
    chosen: list[int] = []
    for i in cand[np.argsort(-d[cand], kind="stable")]:
        if all(abs(t[i] - t[j]) >= min_gap_s for j in chosen):
            chosen.append(int(i))
    return np.sort(t[chosen]) if chosen else np.zeros(0, np.float64)


def detect_cuts(times: Sequence[float], frames: np.ndarray, **kw) -> np.ndarray:
    """Cut times for ``[N,H,W,3]`` frames shown at ``times`` (see :func:`cuts_from_differences`)."""
    return cuts_from_differences(times, frame_differences(frames), **kw)


# ----------------------------------------------------------------------------- per second
def per_second(times: Sequence[float], values: Sequence[float], seconds: int,
               reduce: str = "max") -> np.ndarray:
    """Reduce samples at ``times`` into ``seconds`` rows (row k: [k, k+1)); 0 where empty."""
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', not {reduce!r}")
    t = np.asarray(times, np.float64)
    v = np.asarray(values, np.float64)
    out = np.zeros(int(seconds), np.float64)
    if seconds <= 0 or len(t) == 0:
        return out.astype(np.float32)
    k = np.floor(t).astype(np.int64)
    ok = (k >= 0) & (k < seconds)
    k, v = k[ok], v[ok]
    if reduce == "max":
        acc = np.full(int(seconds), -np.inf)
        np.maximum.at(acc, k, v)
        out = np.where(np.isfinite(acc), acc, 0.0)
    else:
        s = np.bincount(k, v, minlength=seconds)
        n = np.bincount(k, minlength=seconds)
        out = np.where(n > 0, s / np.maximum(n, 1), 0.0)
    return out.astype(np.float32)


def cut_indicator(cut_times: Iterable[float], seconds: int) -> np.ndarray:
    """``[seconds]`` float32: 1 in each second that contains a cut, else 0."""
    ct = np.asarray(list(cut_times), np.float64)
    return (per_second(ct, np.ones_like(ct), seconds, "max") > 0).astype(np.float32)


def pseudo_beat(times: Sequence[float], motion: Sequence[float], seconds: int,
                cut_times: Iterable[float] = ()) -> np.ndarray:
    """Per-second mean motion energy in [0, 1] (max-normalised), cut frames left out."""
    t = np.asarray(times, np.float64)
    m = np.asarray(motion, np.float64)
    keep = np.ones(len(t), bool)
    ct = np.asarray(list(cut_times), np.float64)
    if len(ct) and len(t):
        idx = np.clip(np.searchsorted(t, ct), 0, len(t) - 1)
        keep[idx] = False
    ps = per_second(t[keep], m[keep], seconds, "mean").astype(np.float64)
    top = ps.max() if len(ps) else 0.0
    return (ps / top if top > 0 else ps).astype(np.float32)
