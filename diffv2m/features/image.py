"""Small numpy image helpers shared by the feature extractors: resizing and grey conversion.

Resizing is separable, one axis after the other: exact area averaging when shrinking (no
aliasing from moving noise or fine texture, which matters for cut and motion measures) and
linear interpolation (half-pixel centres) when enlarging.  Both are linear in the number of
pixels and vectorised over a whole batch.
"""
from __future__ import annotations

import numpy as np


def _area_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Box-average ``x`` along ``axis`` down to ``n_out`` samples (exact pixel areas).

    Output j covers input [j*s, (j+1)*s) with s = n_in / n_out.  The integral of the
    piecewise-constant pixels is read off a cumulative sum at fractional positions, so the
    cost is linear in the number of pixels (no matrix products, no BLAS threads).
    """
    n_in = x.shape[axis]
    x = np.moveaxis(x, axis, 0).astype(np.float64, copy=False)
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    xpad = np.concatenate([x, np.zeros((1,) + x.shape[1:])])
    pos = np.arange(n_out + 1) * (n_in / n_out)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_in)
    frac = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    integral = csum[i0] + frac * xpad[i0]
    out = np.diff(integral, axis=0) * (n_out / n_in)
    return np.moveaxis(out.astype(np.float32), 0, axis)


def _linear_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Linear interpolation along ``axis`` up to ``n_out`` samples (half-pixel centres)."""
    n_in = x.shape[axis]
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = n_out
    frac = (pos - i0).astype(np.float32).reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - frac) + np.take(x, i1, axis=axis) * frac


def _resample_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    n_in = x.shape[axis]
    if n_out <= 0 or n_in <= 0:
        raise ValueError(f"cannot resize an axis of {n_in} pixels to {n_out}")
    if n_out == n_in:
        return x
    return _area_axis(x, axis, n_out) if n_out < n_in else _linear_axis(x, axis, n_out)


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``[H,W,C]`` or ``[N,H,W,C]`` frames to ``height x width``; float32 out.

    The scale of the values is kept (0..255 stays 0..255); round and cast the result
    yourself when uint8 is needed (see :func:`resize_uint8`).
    """
    a = np.asarray(frames)
    if a.ndim not in (3, 4):
        raise ValueError(f"expected frames [N,H,W,C] or [H,W,C], got shape {a.shape}")
    x = a.astype(np.float32, copy=False)
    x = _resample_axis(x, a.ndim - 3, int(height))
    x = _resample_axis(x, a.ndim - 2, int(width))
    return np.ascontiguousarray(x, dtype=np.float32)


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
