"""Small numpy image helpers shared by the feature extractors: resizing and grey conversion.

Resizing is separable and written as two small weight matrices, so a batch of frames is
resized by two matrix products: area averaging when shrinking (no aliasing from moving
noise or fine texture, which matters for cut and motion measures) and linear interpolation
(half-pixel centres) when enlarging.
"""
from __future__ import annotations

import numpy as np


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """Weights ``[n_out, n_in]`` (rows sum to 1) that resample one axis from n_in to n_out."""
    if n_in <= 0 or n_out <= 0:
        raise ValueError(f"cannot resize an axis of {n_in} pixels to {n_out}")
    w = np.zeros((n_out, n_in), dtype=np.float64)
    if n_out <= n_in:
        # area: output j covers input [j*s, (j+1)*s); each input pixel i is [i, i+1)
        s = n_in / n_out
        lo = np.arange(n_out)[:, None] * s
        hi = lo + s
        i = np.arange(n_in)[None, :]
        w = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0.0, None) / s
    else:
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0.0, n_in - 1)
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = x - i0
        rows = np.arange(n_out)
        np.add.at(w, (rows, i0), 1.0 - f)
        np.add.at(w, (rows, i1), f)
    return w.astype(np.float32)


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``[H,W,C]`` or ``[N,H,W,C]`` frames to ``height x width``; float32 out.

    The dtype of the values is kept in meaning (0..255 stays 0..255); round and cast the
    result yourself when uint8 is needed (see :func:`resize_uint8`).
    """
    a = np.asarray(frames)
    single = a.ndim == 3
    if single:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"expected frames [N,H,W,C] or [H,W,C], got shape {a.shape}")
    n, h, w, c = a.shape
    x = a.astype(np.float32, copy=False)
    if (h, w) != (height, width):
        wh = resize_weights(h, height)
        ww = resize_weights(w, width)
        x = np.einsum("oh,nhwc->nowc", wh, x, optimize=True)
        x = np.einsum("pw,nowc->nopc", ww, x, optimize=True)
    return x[0] if single else x


def resize_uint8(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`resize` rounded back to uint8 (unchanged frames are returned as they are)."""
    a = np.asarray(frames)
    if a.shape[-3:-1] == (height, width) and a.dtype == np.uint8:
        return a
    return np.clip(np.rint(resize(a, height, width)), 0, 255).astype(np.uint8)


def shrink_to(frames: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so that the longer side is at most ``max_side`` (aspect kept); float32 out."""
    a = np.asarray(frames)
    h, w = a.shape[-3], a.shape[-2]
    scale = max(h, w) / float(max_side)
    if scale <= 1.0:
        return a.astype(np.float32, copy=False)
    return resize(a, max(1, int(round(h / scale))), max(1, int(round(w / scale))))


def to_grey(frames: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB frames ``[..., 3]`` (float32, same 0..255 scale)."""
    a = np.asarray(frames, dtype=np.float32)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
