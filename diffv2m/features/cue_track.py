"""The cue track: where the picture cuts and moves, at the audio latent's frame rate.

The paper's conditions are per second (one ODF value, one cut flag per second), which tells
the DiT *which* second holds a cut but not *where* in it; music cannot land on a cut it cannot
locate.  The cue track gives the DiT the video's timing at its own resolution (24 latent
frames a second for the default model, 21.5 for the published 44.1 kHz / 2048 VAE), added
frame by frame to its input tokens (``DiTConfig.cue_channels``; off in the paper config).

Channels, each ``[frames]`` float32 in [0, 1]:

0. cuts: a Gaussian bump (``sigma`` frames) at every cut, 1 at the cut's own frame;
1. motion: frame-difference energy, soft-saturated (``tanh(m / MOTION_SCALE)``), linearly
   interpolated to the latent frames, with the frames of a cut left out (a cut is not motion).

Frame ``k`` of a window starting at ``start`` seconds covers ``[start + k / rate,
start + (k + 1) / rate)``, like latent frame ``k`` of the audio there.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

CUE_CHANNELS = 2
MOTION_SCALE = 0.05      # mean absolute grey change (0..1) that reads as "a lot of motion"


def cut_channel(cut_times: Sequence[float], *, start: float, frames: int, rate: float,
                sigma: float = 1.0) -> np.ndarray:
    """``[frames]``: sum of Gaussians (std ``sigma`` frames) at each cut's frame, clipped to 1."""
    out = np.zeros(frames, np.float64)
    k = np.arange(frames, dtype=np.float64)
    for c in np.asarray(list(cut_times), np.float64):
        pos = np.floor((c - start) * rate + 1e-6)         # the latent frame the cut falls in
        if -4 * sigma <= pos < frames + 4 * sigma:
            out += np.exp(-0.5 * ((k - pos) / sigma) ** 2)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def motion_channel(times: Sequence[float], energy: Sequence[float],
                   cut_times: Sequence[float] = (), *, start: float, frames: int,
                   rate: float) -> np.ndarray:
    """``[frames]``: soft-saturated motion energy at each latent frame's centre (0 outside)."""
    t = np.asarray(times, np.float64)
    m = np.asarray(energy, np.float64)
    if len(t) == 0:
        return np.zeros(frames, np.float32)
    ct = np.asarray(list(cut_times), np.float64)
    if len(ct):
        keep = np.ones(len(t), bool)
        keep[np.clip(np.searchsorted(t, ct - 1e-6), 0, len(t) - 1)] = False
        t, m = t[keep], m[keep]
        if len(t) == 0:
            return np.zeros(frames, np.float32)
    centres = start + (np.arange(frames) + 0.5) / rate
    v = np.interp(centres, t, m, left=0.0, right=0.0)
    return np.tanh(np.maximum(v, 0.0) / MOTION_SCALE).astype(np.float32)


def cue_track(cut_times: Sequence[float], motion_times: Sequence[float],
              motion_values: Sequence[float], *, start: float, frames: int,
              rate: float) -> np.ndarray:
    """``[CUE_CHANNELS, frames]`` float32: the cut and motion channels of one window."""
    return np.stack([
        cut_channel(cut_times, start=start, frames=frames, rate=rate),
        motion_channel(motion_times, motion_values, cut_times, start=start, frames=frames,
                       rate=rate),
    ])
