"""Windows sampled side by side on ONNX Runtime: one DiT call per sampler step for several
windows gives the take of one window at a time, bit for bit (the embedded score model)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from diffv2m import jobs, media, synthesis
from mediagen import make_video

from embedded_models import SCORE_ONNX, needs_score_model

pytestmark = needs_score_model


@pytest.fixture(scope="module")
def backend():
    from diffv2m.runtime.ort import WINDOW_BATCH, load_runtime
    be = load_runtime(SCORE_ONNX, threads=1)
    assert be.window_batch == WINDOW_BATCH > 1          # CPU: windows side by side
    return be


@pytest.fixture(scope="module")
def conditions(backend, tmp_path_factory):
    root = tmp_path_factory.mktemp("batching")
    clip = make_video(root / "clip.mp4", seconds=21, fps=Fraction(12), size=(96, 64),
                      cut_times=(4.0, 9.5, 15.0)).path
    return jobs.video_conditions(backend, media.FileFrameSource(clip))


def _denoise_batches(backend):
    seen = []
    plain = backend.denoise

    def denoise(x, *a, **kw):
        seen.append(x.shape[0])
        return plain(x, *a, **kw)
    return seen, denoise


def test_dit_rows_do_not_depend_on_their_batch(backend):
    """The property batching relies on: a row of a batch-8 DiT call is the batch-1 result."""
    cfg = backend.config
    rng = np.random.default_rng(1)
    B, W, L = 8, cfg.window_seconds, cfg.latent_frames
    feeds = {"x": rng.standard_normal((B, cfg.autoencoder.latent_dim, L), np.float32),
             "t": rng.random(B, np.float32), "semantic": rng.standard_normal(
                 (B, W, cfg.semantic_dim), np.float32),
             "rhythm": rng.random((B, W, 1), np.float32),
             "colour": rng.random((B, W, 3072), np.float32), "cls": np.arange(B) % 3,
             "seconds_start": np.arange(B, dtype=np.float32) * 8,
             "seconds_total": np.full(B, 60, np.float32)}
    if cfg.dit.cue_channels:
        feeds["cues"] = rng.random((B, cfg.dit.cue_channels, L), np.float32)
    together = backend.denoise(**feeds)
    for i in range(B):
        alone = backend.denoise(**{k: v[i:i + 1] for k, v in feeds.items()})
        assert np.array_equal(alone, together[i:i + 1]), i


def test_side_by_side_windows_give_the_same_take(backend, conditions, monkeypatch):
    starts = synthesis.window_starts(conditions.seconds, backend.config.window_seconds,
                                     backend.config.overlap_seconds)
    assert len(starts) == 3
    settings = synthesis.Settings(seed=4, steps=5, cfg_scale=backend.config.default_cfg_scale)
    seen, denoise = _denoise_batches(backend)
    monkeypatch.setattr(backend, "denoise", denoise)
    together = synthesis.synthesise(backend, conditions, settings)
    assert seen == [2 * len(starts)] * 5                  # one call per step for all windows
    seen.clear()
    monkeypatch.setattr(backend, "window_batch", 1)
    alone = synthesis.synthesise(backend, conditions, settings)
    assert seen == [2] * (5 * len(starts))
    assert together.score.notes == alone.score.notes
    assert np.array_equal(together.audio, alone.audio)
    assert len(together.score.notes) > 0


def test_tensorrt_keeps_one_window_per_call(backend, monkeypatch):
    """TensorRT engines are built for the CFG batch of 2: one window per call there."""
    from diffv2m.runtime.ort import OrtBackend
    dit = backend.graphs["dit"]
    monkeypatch.setattr(dit, "provider", "tensorrt:NVIDIA H200")
    trt = OrtBackend(backend.onnx_dir, backend.manifest, backend.graphs, threads=1, notes=[])
    assert synthesis.window_batch(trt) == 1
    monkeypatch.setattr(dit, "provider", "TensorrtExecutionProvider")
    trt = OrtBackend(backend.onnx_dir, backend.manifest, backend.graphs, threads=1, notes=[])
    assert synthesis.window_batch(trt) == 1


def test_idle_graphs_leave_the_cores_alone(backend):
    """After a run, onnxruntime's threads stop spinning (FluidSynth renders the take next):
    an idle second after a DiT call costs this process next to no CPU."""
    import time
    dit = backend.graph("dit")
    assert dit.session.get_session_options().get_session_config_entry(
        "session.force_spinning_stop") == "1"
    cfg = backend.config
    B, W, L = 8, cfg.window_seconds, cfg.latent_frames
    feeds = {"x": np.zeros((B, cfg.autoencoder.latent_dim, L), np.float32),
             "t": np.full(B, 0.5, np.float32),
             "semantic": np.zeros((B, W, cfg.semantic_dim), np.float32),
             "rhythm": np.zeros((B, W, 1), np.float32),
             "colour": np.zeros((B, W, 3072), np.float32), "cls": np.ones(B, np.int64),
             "seconds_start": np.zeros(B, np.float32), "seconds_total": np.full(B, 9, np.float32)}
    if cfg.dit.cue_channels:
        feeds["cues"] = np.zeros((B, cfg.dit.cue_channels, L), np.float32)
    from diffv2m.runtime.ort import load_runtime
    two = load_runtime(SCORE_ONNX, threads=2)                    # a pool with a worker thread
    two.denoise(**feeds)                                         # (the first run sets up)
    time.sleep(0.1)
    two.denoise(**feeds)
    c0 = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - c0 < 0.01                      # spinning: 30-40 ms here
