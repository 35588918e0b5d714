"""Colour ("emotion") features: one 3072-d colour histogram per second of video.

The paper conditions the music's mood on a 3072-d colour feature per second but does not
publish its binning.  This project's choice, fixed here and versioned with the feature cache:

* the frame is first shrunk (area averaging) so that its longer side is at most
  ``ANALYSIS_SIDE`` pixels: the histogram then hardly depends on the source resolution,
  and costs the same for 4K as for 64x64 frames;
* each pixel is converted to HSV (hue in [0, 1) wrapping, saturation and value in [0, 1]);
* a joint histogram with ``HUE_BINS x SAT_BINS x VAL_BINS = 16 x 12 x 16 = 3072`` uniform
  bins is counted, index ``(h * SAT_BINS + s) * VAL_BINS + v``;
* it is L1-normalised (sums to 1), so it reads as "which fraction of the picture has this
  colour".  Greys (zero saturation) have hue 0 by convention and land in the first hue row.

Hue gets the most bins because it carries most of the "warm/cold" mood; saturation needs
fewer.  Everything is vectorised numpy (one ``bincount`` for a whole batch).
"""
from __future__ import annotations

import numpy as np

from .image import shrink_to

HUE_BINS = 16
SAT_BINS = 12
VAL_BINS = 16
COLOUR_DIM = HUE_BINS * SAT_BINS * VAL_BINS  # 3072
ANALYSIS_SIDE = 64


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB in [0, 255] (any leading shape, last axis 3) -> (hue [0,1), sat [0,1], val [0,1])."""
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = np.max(x, axis=-1)
    mn = np.min(x, axis=-1)
    c = v - mn
    s = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)
    safe_c = np.where(c > 0, c, 1.0)
    h = np.where(v == r, (g - b) / safe_c,
                 np.where(v == g, 2.0 + (b - r) / safe_c, 4.0 + (r - g) / safe_c))
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
    return h.astype(np.float32), s.astype(np.float32), v.astype(np.float32)


def _bin(x: np.ndarray, n: int) -> np.ndarray:
    return np.minimum((x * n).astype(np.int64), n - 1)


def colour_bin_index(frames: np.ndarray) -> np.ndarray:
    """The histogram bin (0..3071) of each pixel of ``[..., H, W, 3]`` frames."""
    h, s, v = rgb_to_hsv(frames)
    return (_bin(h, HUE_BINS) * SAT_BINS + _bin(s, SAT_BINS)) * VAL_BINS + _bin(v, VAL_BINS)


def colour_features(frames: np.ndarray) -> np.ndarray:
    """``[T, H, W, 3]`` RGB frames -> ``[T, 3072]`` float32 histograms, each summing to 1."""
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected frames [T,H,W,3], got shape {a.shape}")
    t = a.shape[0]
    if t == 0:
        return np.zeros((0, COLOUR_DIM), np.float32)
    small = shrink_to(a, ANALYSIS_SIDE)
    idx = colour_bin_index(small).reshape(t, -1)
    idx = idx + (np.arange(t, dtype=np.int64) * COLOUR_DIM)[:, None]
    counts = np.bincount(idx.ravel(), minlength=t * COLOUR_DIM).reshape(t, COLOUR_DIM)
    return (counts / idx.shape[1]).astype(np.float32)


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """One ``[H, W, 3]`` RGB frame -> its ``[3072]`` float32 histogram (sums to 1)."""
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected a frame [H,W,3], got shape {a.shape}")
    return colour_features(a[None])[0]
