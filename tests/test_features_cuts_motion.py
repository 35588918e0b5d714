"""Scene cuts, motion energy and per-second reductions on synthetic frame sequences."""
import numpy as np
import pytest

from diffv2m.features import cuts_motion

FPS = 25.0
H, W = 72, 96


def _shot(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` frames of one synthetic shot; every kind moves or flickers inside the shot."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    out = np.empty((n, H, W, 3), np.float32)
    for i in range(n):
        if kind == "red":          # solid colour with sensor-like grain
            f = np.array([200, 40, 30], np.float32) + rng.normal(0, 4, (H, W, 3))
        elif kind == "noise":      # fresh random texture every frame (heavy grain / water)
            f = rng.uniform(0, 255, (H, W, 3))
        elif kind == "gradient":   # a colour ramp panning across the frame
            ph = (x + 3.0 * i) / W
            f = np.stack([128 + 100 * np.sin(2 * np.pi * ph), 60 + 0 * ph,
                          128 + 100 * np.cos(2 * np.pi * ph)], -1)
        elif kind == "blue":       # solid colour slowly brightening
            f = np.array([20, 40, 120 + 2.0 * i], np.float32) + rng.normal(0, 3, (H, W, 3))
        elif kind == "square":     # a bright square moving over a dark background
            f = np.full((H, W, 3), 25.0)
            cx = 10 + 2 * i
            f[20:44, cx:cx + 24] = (240, 230, 90)
        else:
            raise AssertionError(kind)
        out[i] = f
    return np.clip(out, 0, 255).astype(np.uint8)


def _sequence(kinds, lengths, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.concatenate([_shot(k, n, rng) for k, n in zip(kinds, lengths)])
    cut_frames = np.cumsum(lengths)[:-1]
    return np.arange(len(frames)) / FPS, frames, cut_frames / FPS


def test_cuts_found_within_one_frame_and_no_false_cuts():
    kinds = ["red", "noise", "gradient", "blue", "square", "gradient"]
    lengths = [37, 30, 43, 28, 35, 27]
    times, frames, truth = _sequence(kinds, lengths)
    found = cuts_motion.detect_cuts(times, frames)
    assert len(found) == len(truth), (found, truth)
    assert np.all(np.abs(found - truth) <= 1.0 / FPS + 1e-9), (found, truth)


def test_smooth_motion_alone_is_not_a_cut():
    rng = np.random.default_rng(1)
    frames = np.concatenate([_shot("gradient", 60, rng), ])
    times = np.arange(len(frames)) / FPS
    assert len(cuts_motion.detect_cuts(times, frames)) == 0
    for kind in ("noise", "square", "blue", "red"):
        f = _shot(kind, 50, rng)
        assert len(cuts_motion.detect_cuts(np.arange(50) / FPS, f)) == 0, kind


def test_frame_differences_range_and_shape():
    times, frames, truth = _sequence(["red", "blue"], [10, 10])
    d = cuts_motion.frame_differences(frames)
    assert d.shape == (20,) and d[0] == 0
    assert d.min() >= 0 and d.max() <= 1
    assert np.argmax(d) == 10 and d[10] > 0.6  # R and B move, G stays: 2/3
    assert np.all(d[1:10] < 0.1)


def test_streaming_analyser_matches_batch_functions():
    times, frames, _ = _sequence(["square", "noise"], [12, 8])
    a = cuts_motion.FrameAnalyser()
    for t, f in zip(times, frames):
        a.push(t, f)
    np.testing.assert_allclose(a.differences, cuts_motion.frame_differences(frames), atol=1e-5)
    np.testing.assert_allclose(a.motion, cuts_motion.motion_energy(frames), atol=1e-5)
    np.testing.assert_array_equal(a.times, times)


def test_motion_energy_orders_static_below_moving():
    rng = np.random.default_rng(2)
    still = np.repeat(_shot("square", 1, rng), 10, axis=0)
    moving = _shot("square", 10, rng)
    assert cuts_motion.motion_energy(still).max() == 0
    assert cuts_motion.motion_energy(moving)[1:].min() > 0.005


def test_per_second_reductions():
    t = np.array([0.1, 0.5, 1.2, 3.9, 4.0])
    v = np.array([1.0, 3.0, 2.0, 5.0, 7.0])
    np.testing.assert_allclose(cuts_motion.per_second(t, v, 4, "max"), [3, 2, 0, 5])
    np.testing.assert_allclose(cuts_motion.per_second(t, v, 4, "mean"), [2, 2, 0, 5])
    with pytest.raises(ValueError):
        cuts_motion.per_second(t, v, 4, "median")
    np.testing.assert_array_equal(cuts_motion.cut_indicator([0.5, 2.2, 9.0], 4), [1, 0, 1, 0])


def test_pseudo_beat_normalised_and_ignores_cut_frames():
    t = np.arange(40) / 10.0
    m = np.where(t < 2, 0.01, 0.04)
    m[25] = 0.9            # a cut transition: huge change that is not motion
    pb = cuts_motion.pseudo_beat(t, m, 4, cut_times=[2.5])
    assert pb.max() == pytest.approx(1.0)
    np.testing.assert_allclose(pb, [0.25, 0.25, 1.0, 1.0], rtol=1e-5)
    assert np.all(cuts_motion.pseudo_beat(t, np.zeros(40), 4) == 0)


def test_a_flash_in_one_part_of_the_picture_is_not_a_cut():
    rng = np.random.default_rng(3)
    frames = _shot("gradient", 50, rng)
    frames[20:23, : H // 4] = 255            # the top quarter flashes white for 3 frames
    frames[35:, : H // 4] = 0                # then a sign in the top quarter turns black
    times = np.arange(50) / FPS
    assert len(cuts_motion.detect_cuts(times, frames)) == 0
    blocks = cuts_motion.block_histograms(frames[:2])
    assert blocks.shape == (2, 16, 3, cuts_motion.HIST_BINS)
    np.testing.assert_allclose(blocks.sum(-1), 1.0, atol=1e-5)
