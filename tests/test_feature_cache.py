"""The one feature cache: generation's and training's entries, versions, and healing."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from diffv2m.features import feature_cache, video
from test_features_video import S, ArraySource, _stamped_clip


def test_an_entry_of_another_version_misses_and_is_replaced(tmp_path):
    times, frames = _stamped_clip()
    src = ArraySource(times, frames, 4.5)
    feats = video.compute_video_features(src, image_size=S)
    path = feature_cache.entry_path(tmp_path, src.cache_key(), image_size=S, analysis_fps=None)
    older = np.int64(feature_cache.FEATURES_VERSION - 1)
    feats.save(path, extra={feature_cache.VERSION_ARRAY: older})
    assert feature_cache.read_entry(path, image_size=S) is None and not path.exists()
    feats.save(path)                                        # made before versions were saved
    assert feature_cache.read_entry(path, image_size=S) is None and not path.exists()
    src.calls = 0
    again = video.features_for(src, tmp_path, image_size=S)
    assert src.calls == 1 and path.is_file()                # recomputed at the same key
    got, extra = feature_cache.read_entry(path, image_size=S)
    assert extra == {} and got.seconds == again.seconds == 5
    np.testing.assert_array_equal(got.colour, feats.colour)


def test_the_key_covers_version_source_and_every_parameter(tmp_path):
    key = feature_cache.entry_path(tmp_path, "a", image_size=S, analysis_fps=None)
    assert key == feature_cache.entry_path(tmp_path, "a", analysis_fps=None, image_size=S)
    assert key != feature_cache.entry_path(tmp_path, "b", image_size=S, analysis_fps=None)
    assert key != feature_cache.entry_path(tmp_path, "a", image_size=16, analysis_fps=None)
    assert key != feature_cache.entry_path(tmp_path, "a", image_size=S, analysis_fps=None,
                                           odf={"audio_sha256": "0", "sample_rate": 24000})


def test_a_training_clip_is_an_entry_with_its_odf(tmp_path):
    from mediagen import make_click_track, make_video

    from diffv2m.data import clip_features
    make_video(tmp_path / "c.mp4", seconds=3, fps=Fraction(12), size=(64, 48), cut_times=(1.5,))
    make_click_track(tmp_path / "c.wav", bpm=120, seconds=3, sr=24000)
    clip = {"id": "c", "video": str(tmp_path / "c.mp4"), "audio": str(tmp_path / "c.wav")}
    cache = tmp_path / "features"
    path, feats, odf = clip_features.clip_features(clip, cache, image_size=S, sample_rate=24000)
    assert odf.dtype == np.float32 and odf.shape[0] >= feats.seconds == 3
    mtime = path.stat().st_mtime_ns
    got, extra = feature_cache.read_entry(path, image_size=S, extra=("odf",))
    np.testing.assert_array_equal(extra["odf"], odf)
    np.testing.assert_array_equal(got.frames_1fps, feats.frames_1fps)
    again = clip_features.clip_features(clip, cache, image_size=S, sample_rate=24000)
    assert again[0] == path and path.stat().st_mtime_ns == mtime       # a hit: nothing rewritten
    np.testing.assert_array_equal(again[2], odf)
    # a generation-style entry of the same video has no ODF: asked for one, it misses
    feats.save(path, extra={feature_cache.VERSION_ARRAY: np.int64(feature_cache.FEATURES_VERSION)})
    assert feature_cache.read_entry(path, image_size=S, extra=("odf",)) is None
    # another sample rate is another entry
    assert clip_features.clip_entry(clip, cache, image_size=S, sample_rate=16000) != path
