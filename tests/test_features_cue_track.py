"""The frame-rate cue track (cuts and motion at the latent rate) that the DiT reads."""
from __future__ import annotations

import numpy as np
import pytest

from diffv2m.features import cue_track as ct

RATE = 24.0


def test_cut_bump_peaks_at_the_cuts_own_frame():
    c = ct.cut_channel([1.5], start=0.0, frames=96, rate=RATE)
    assert c.shape == (96,) and c.dtype == np.float32
    assert int(np.argmax(c)) == 36 and c[36] == pytest.approx(1.0)
    assert c[35] == pytest.approx(np.exp(-0.5)) and c[37] == pytest.approx(np.exp(-0.5))
    assert c[:30].max() < 1e-6 and c[42:].max() < 1e-6
    # a cut mid-frame belongs to the frame it falls in (frame 36 covers [1.5, 1.5417))
    assert int(np.argmax(ct.cut_channel([1.53], start=0.0, frames=96, rate=RATE))) == 36


def test_cut_channel_window_offsets_and_outside_cuts():
    full = ct.cut_channel([0.5, 2.25, 3.9], start=0.0, frames=120, rate=RATE)
    part = ct.cut_channel([0.5, 2.25, 3.9], start=2.0, frames=48, rate=RATE)
    np.testing.assert_allclose(part, full[48:96], atol=1e-6)
    assert not ct.cut_channel([10.0], start=0.0, frames=48, rate=RATE).any()
    # two cuts one frame apart saturate at 1, never above
    assert ct.cut_channel([1.0, 1.0417], start=0.0, frames=48, rate=RATE).max() == pytest.approx(1.0)


def test_motion_channel_interpolates_saturates_and_skips_cut_frames():
    t = np.arange(0, 4, 1 / 24.0)
    m = np.full(len(t), 0.02)
    m[48] = 0.9                                   # the cut frame: a huge difference
    out = ct.motion_channel(t, m, [2.0], start=0.0, frames=120, rate=RATE)
    inside = out[:90]
    np.testing.assert_allclose(inside, np.tanh(0.02 / ct.MOTION_SCALE), rtol=1e-5)
    assert (out[97:] == 0).all()                   # past the end of the curve
    louder = ct.motion_channel(t, m * 10, start=0.0, frames=24, rate=RATE)
    assert (louder[1:] > inside[1:24]).all() and louder.max() <= 1.0


def test_cue_track_stacks_channels():
    t = np.arange(0, 3, 1 / 24.0)
    q = ct.cue_track(np.array([1.0]), t, np.full(len(t), 0.05), start=0.0, frames=72, rate=RATE)
    assert q.shape == (ct.CUE_CHANNELS, 72)
    assert int(np.argmax(q[0])) == 24 and q[1, 10] == pytest.approx(np.tanh(1.0), rel=1e-5)
    bare = ct.cue_track(np.array([1.0]), np.zeros(0), np.zeros(0), start=0.0, frames=72, rate=RATE)
    assert not bare[1].any()                        # no motion curve: a zero motion channel
