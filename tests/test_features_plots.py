"""The PNG plots: written atomically, real images, and no global matplotlib backend change."""
import numpy as np

from diffv2m.features import plots, rhythm
from diffv2m.features.cuts_motion import cut_indicator
from diffv2m.features.video import VideoFeatures

PNG = b"\x89PNG\r\n\x1a\n"


def _features(T=6):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (T, 16, 16, 3), dtype=np.uint8)
    colour = rng.random((T, 3072)).astype(np.float32)
    colour /= colour.sum(1, keepdims=True)
    times = np.arange(T * 10) / 10.0
    cuts = np.array([1.5, 4.2])
    return VideoFeatures(duration=T - 0.5, seconds=T, frames_1fps=frames, colour=colour,
                         scene_cut=cut_indicator(cuts, T), cut_times=cuts,
                         motion=rng.random(T).astype(np.float32),
                         motion_curve=(times, rng.random(len(times)).astype(np.float32)))


def test_plot_rhythm_and_features_write_pngs(tmp_path):
    import matplotlib
    backend = matplotlib.get_backend()
    p = plots.plot_rhythm(np.array([0.0, 1.0, 0.3, 0.0, 0.7]), [1.2, 3.0], tmp_path / "r.png",
                          beat_times=[0.5, 1.0, 1.5])
    assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000
    q = rhythm.plot_rhythm(np.zeros(3), [], tmp_path / "sub" / "r2.png")
    assert q.read_bytes()[:8] == PNG
    f = plots.plot_features(_features(), tmp_path / "f.png")
    assert f.read_bytes()[:8] == PNG and f.stat().st_size > 5000
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.png", "r.png", "sub"]
    assert matplotlib.get_backend() == backend
