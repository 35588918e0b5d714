"""The 3072-d colour histogram: size, normalisation, and that it tells colours apart."""
import numpy as np
import pytest

from diffv2m.features import colour
from diffv2m.features.image import resize, resize_uint8


def _solid(rgb, h=48, w=80):
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def test_histogram_has_3072_bins_and_sums_to_one():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    h = colour.colour_histogram(frame)
    assert h.shape == (3072,) and h.dtype == np.float32
    assert h.sum() == pytest.approx(1.0, abs=1e-5)
    assert h.min() >= 0
    assert np.count_nonzero(h) > 500          # random colours spread over many bins


def test_red_and_blue_frames_differ():
    red = colour.colour_histogram(_solid((230, 20, 20)))
    blue = colour.colour_histogram(_solid((20, 20, 230)))
    assert red.argmax() != blue.argmax()
    assert 0.5 * np.abs(red - blue).sum() == pytest.approx(1.0)   # disjoint supports
    # red has hue 0, blue hue 2/3: the hue row of the winning bin says so
    assert red.argmax() // (colour.SAT_BINS * colour.VAL_BINS) == 0
    assert blue.argmax() // (colour.SAT_BINS * colour.VAL_BINS) == int(2 / 3 * colour.HUE_BINS)


def test_batch_matches_single_frames_and_is_resolution_insensitive():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(frames, 32, axis=1), 32, axis=2)   # 256x256 blocky frames
    batch = colour.colour_features(frames)
    assert batch.shape == (3, 3072)
    for i in range(3):
        np.testing.assert_allclose(batch[i], colour.colour_histogram(frames[i]), atol=1e-7)
    small = colour.colour_features(frames[:, ::4, ::4])               # 64x64 version
    assert 0.5 * np.abs(batch - small).sum(axis=1).max() < 0.05


def test_hsv_conversion_matches_colorsys():
    import colorsys
    rng = np.random.default_rng(2)
    px = rng.integers(0, 256, (200, 3))
    h, s, v = colour.rgb_to_hsv(px)
    for i, p in enumerate(px):
        eh, es, ev = colorsys.rgb_to_hsv(*(p / 255.0))
        assert abs(s[i] - es) < 1e-5 and abs(v[i] - ev) < 1e-5
        assert min(abs(h[i] - eh), 1 - abs(h[i] - eh)) < 1e-5


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        colour.colour_features(np.zeros((4, 4, 3), np.uint8))
    assert colour.colour_features(np.zeros((0, 4, 4, 3), np.uint8)).shape == (0, 3072)


def test_resize_preserves_flat_colour_and_mean():
    flat = _solid((10, 200, 90), 37, 53)
    np.testing.assert_array_equal(resize_uint8(flat, 16, 16)[0, 0], (10, 200, 90))
    np.testing.assert_array_equal(resize_uint8(flat, 100, 120)[50, 60], (10, 200, 90))
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 255, (60, 90, 3)).astype(np.float32)
    assert resize(img, 20, 30).mean() == pytest.approx(img.mean(), rel=1e-4)
