"""VideoFeatures of a FrameSource: one pass, per-second rows, cuts, save/load and the cache."""
from __future__ import annotations

import math

import numpy as np
import pytest

from diffv2m.errors import Cancelled, UserError
from diffv2m.features import video
from diffv2m.features.image import resize_uint8

S = 32


class ArraySource:
    """The FrameSource protocol over in-memory frames shown at ``times`` (for tests)."""

    def __init__(self, times, frames, duration, key="clip-a"):
        self.times = np.asarray(times, float)
        self.data = np.asarray(frames)
        self.duration = float(duration)
        self.key = key
        self.calls = 0

    def frames(self, fps=None, size=None):
        self.calls += 1
        if fps is None:
            pick = [(t, i) for i, t in enumerate(self.times)]
        else:
            n = int(math.ceil(self.duration * fps - 1e-9))
            pick = [(k / fps, int(np.searchsorted(self.times, k / fps + 1e-9) - 1)) for k in range(n)]
        for t, i in pick:
            f = self.data[i]
            if size is not None:
                f = resize_uint8(f, size[1], size[0])
            yield t, f

    def cache_key(self):
        return self.key


def _stamped_clip(fps=10.0, seconds=4.5, cuts=(1.3, 3.0)):
    """Shots of flat colour with a bright square moving; pixel (0,0) holds the frame index."""
    n = int(round(fps * seconds))
    times = np.arange(n) / fps
    colours = [(200, 40, 40), (40, 160, 60), (50, 70, 200)]
    frames = np.empty((n, S, S, 3), np.uint8)
    for i, t in enumerate(times):
        shot = int(np.searchsorted(cuts, t, side="right"))
        frames[i] = colours[shot]
        x = 2 + (i % 20)
        frames[i, 12:20, x:x + 8] = 250
        frames[i, 0:2, 0:2] = i
    return times, frames


def test_compute_video_features_rows_cuts_and_centre_frames():
    times, frames = _stamped_clip()
    src = ArraySource(times, frames, duration=4.5)
    seen = []
    f = video.compute_video_features(src, image_size=S, progress=lambda *a: seen.append(a))
    assert f.seconds == 5 and f.duration == 4.5
    assert f.frames_1fps.shape == (5, S, S, 3) and f.frames_1fps.dtype == np.uint8
    # the frame nearest the centre of each second: t = 0.5, 1.5, 2.5, 3.5 and 4.25 (last, partial)
    np.testing.assert_array_equal(f.frames_1fps[:, 0, 0, 0], [5, 15, 25, 35, 42])
    assert f.colour.shape == (5, 3072)
    np.testing.assert_allclose(f.colour.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(f.cut_times, [1.3, 3.0], atol=0.1 + 1e-9)
    np.testing.assert_array_equal(f.scene_cut, [0, 1, 0, 1, 0])
    assert f.motion.shape == (5,) and f.motion.min() >= 0 and f.motion.max() == pytest.approx(1)
    mt, mv = f.motion_curve
    assert len(mt) == len(mv) == len(times)
    assert seen[0] == ("features", 0, 5) and seen[-1] == ("features", 5, 5)
    assert src.calls == 1                       # one pass over the frames


def test_analysis_rate_and_sparse_frames():
    times, frames = _stamped_clip(fps=10.0, seconds=4.0)
    f = video.compute_video_features(ArraySource(times, frames, 4.0), image_size=16,
                                     analysis_fps=0.5)      # one frame every 2 s
    assert f.frames_1fps.shape == (4, 16, 16, 3)
    assert f.meta["frames_analysed"] == 2
    # seconds without a frame of their own borrow the nearest one
    assert np.array_equal(f.frames_1fps[1], f.frames_1fps[0])


def test_user_errors_and_cancel():
    times, frames = _stamped_clip()
    with pytest.raises(UserError, match="empty"):
        video.compute_video_features(ArraySource(times, frames, 0.0))
    with pytest.raises(UserError, match="no video frames"):
        video.compute_video_features(ArraySource([], np.zeros((0, S, S, 3), np.uint8), 2.0))

    def cancel(stage, done, total):
        if done >= 2:
            raise Cancelled()
    with pytest.raises(Cancelled):
        video.compute_video_features(ArraySource(times, frames, 4.5), progress=cancel)


def test_save_load_round_trip(tmp_path):
    times, frames = _stamped_clip()
    f = video.compute_video_features(ArraySource(times, frames, 4.5), image_size=S)
    path = f.save(tmp_path / "a" / "feats.npz")
    g = video.VideoFeatures.load(path)
    assert (g.duration, g.seconds, g.meta) == (f.duration, f.seconds, f.meta)
    for name in ("frames_1fps", "colour", "scene_cut", "cut_times", "motion"):
        a, b = getattr(f, name), getattr(g, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(f.motion_curve[0], g.motion_curve[0])
    np.testing.assert_array_equal(f.motion_curve[1], g.motion_curve[1])
    assert [p.name for p in path.parent.iterdir()] == ["feats.npz"]   # no temp file left
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        video.VideoFeatures.load(tmp_path / "bad.npz")
    with pytest.raises(UserError, match="no such"):
        video.VideoFeatures.load(tmp_path / "missing.npz")


def test_cache_is_a_no_op_on_the_second_call(tmp_path):
    times, frames = _stamped_clip()
    src = ArraySource(times, frames, 4.5)
    a = video.features_for(src, tmp_path, image_size=S)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and src.calls == 1
    mtime = files[0].stat().st_mtime_ns
    b = video.features_for(src, tmp_path, image_size=S)
    assert src.calls == 1                                   # nothing decoded again
    assert files[0].stat().st_mtime_ns == mtime             # nothing rewritten
    np.testing.assert_array_equal(a.colour, b.colour)
    # other parameters or another source: another entry
    video.features_for(src, tmp_path, image_size=16)
    video.features_for(ArraySource(times, frames, 4.5, key="clip-b"), tmp_path, image_size=S)
    assert len(list(tmp_path.glob("*.npz"))) == 3 and src.calls == 2
    # a damaged entry is recomputed, not an error
    files[0].write_bytes(b"junk")
    c = video.features_for(src, tmp_path, image_size=S)
    assert src.calls == 3
    np.testing.assert_array_equal(a.colour, c.colour)


def test_real_file_through_media(tmp_path):
    media = pytest.importorskip("diffv2m.media")
    from mediagen import make_video
    gen = make_video(tmp_path / "clip.mp4", seconds=4.0, fps=24, size=(96, 64),
                     cut_times=(1.25, 2.75))
    src = media.FileFrameSource(gen.path)
    f = video.compute_video_features(src, image_size=S)
    assert f.seconds == 4 and f.frames_1fps.shape == (4, S, S, 3)
    np.testing.assert_allclose(f.cut_times, [1.25, 2.75], atol=1 / 24 + 1e-6)
    np.testing.assert_array_equal(f.scene_cut, [0, 1, 1, 0])
    # the shot colours survive decoding: second 0 is red, second 3 is yellow-ish
    c0 = f.frames_1fps[0, S // 2:].reshape(-1, 3).mean(0)
    assert c0[0] > 150 and c0[1] < 90
    assert f.colour[0].argmax() != f.colour[3].argmax()
    assert video.features_for(src, tmp_path / "cache", image_size=S).seconds == 4
