"""The torch-free generation core: windows, guidance batching, seeding, seams, cancellation."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from diffv2m import synthesis
from diffv2m.config import AutoencoderConfig, ModelConfig
from diffv2m.errors import Cancelled, UserError


class LinearBackend:
    """A numpy backend whose 'networks' are fixed linear maps (records what it was given)."""

    name = "numpy-linear"

    def __init__(self):
        self.config = ModelConfig(window_seconds=4, overlap_seconds=1, semantic_dim=8,
                                  autoencoder=AutoencoderConfig(sample_rate=800, strides=(2, 5, 10),
                                                                latent_dim=4))
        self.denoise_batches: list[int] = []
        self.seconds_start: list[float] = []

    def encode_semantic(self, frames):
        return frames.reshape(len(frames), -1)[:, :8].astype(np.float32) / 255.0

    def predict_rhythm(self, semantic, scene_cut, pseudo_beat, cls):
        return np.clip(scene_cut + 0.1 * pseudo_beat, 0, 1)

    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total):
        self.denoise_batches.append(x.shape[0])
        self.seconds_start.append(float(seconds_start[0]))
        bias = rhythm.mean(axis=(1, 2))[:, None, None] + semantic.mean(axis=(1, 2))[:, None, None]
        return 0.5 * x + bias

    def decode(self, z):
        hop = self.config.autoencoder.hop
        return np.repeat(np.tanh(z.mean(axis=1, keepdims=True)), hop, axis=-1)


def features(seconds: float, cuts=()):
    T = int(np.ceil(seconds))
    rng = np.random.default_rng(0)
    cut = np.zeros(T, np.float32)
    cut[list(cuts)] = 1
    return SimpleNamespace(duration=seconds, frames_1fps=rng.integers(0, 255, (T, 4, 4, 3), np.uint8),
                           colour=np.full((T, 3072), 1 / 3072, np.float32), scene_cut=cut,
                           motion=np.linspace(0, 1, T, dtype=np.float32), cut_times=np.array(cuts, float))


def test_window_starts_cover_and_end_exactly():
    assert synthesis.window_starts(3, 4, 1) == [0]
    assert synthesis.window_starts(4, 4, 1) == [0]
    starts = synthesis.window_starts(11, 4, 1)
    assert starts[0] == 0 and starts[-1] + 4 == 11
    assert all(b - a <= 3 for a, b in zip(starts, starts[1:]))


def test_same_seed_same_audio_and_length():
    be = LinearBackend()
    cond = synthesis.conditions_from_features(be, features(9.5, cuts=(2, 6)))
    s = synthesis.Settings(seed=3, steps=6, cfg_scale=2.0)
    a = synthesis.synthesise(be, cond, s).audio
    b = synthesis.synthesise(be, cond, s).audio
    c = synthesis.synthesise(be, cond, synthesis.Settings(seed=4, steps=6, cfg_scale=2.0)).audio
    assert a.shape == (1, int(9.5 * 800))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    # windows know where they are
    assert sorted(set(be.seconds_start)) == [0.0, 3.0, 6.0]


def test_guidance_batches_cond_and_null_together_and_scale_one_skips_null():
    be = LinearBackend()
    cond = synthesis.conditions_from_features(be, features(3))
    synthesis.synthesise(be, cond, synthesis.Settings(steps=3, cfg_scale=3.0))
    assert set(be.denoise_batches) == {2}
    be.denoise_batches.clear()
    synthesis.synthesise(be, cond, synthesis.Settings(steps=3, cfg_scale=1.0))
    assert set(be.denoise_batches) == {1}


def test_predicted_rhythm_follows_cuts_and_is_averaged_over_overlaps():
    be = LinearBackend()
    cond = synthesis.conditions_from_features(be, features(10, cuts=(3, 7)))
    assert cond.odf.shape == (10,)
    assert cond.odf[3] >= 1.0 - 1e-6 and cond.odf[7] >= 1.0 - 1e-6
    assert cond.odf[0] < 0.5


def test_crossfade_seam_lands_on_strongest_onset_in_overlap():
    odf = np.zeros(12)
    odf[7] = 1.0
    assert synthesis.crossfade_point(odf, 6, 8, 0.05) == 7.0
    assert synthesis.crossfade_point(np.zeros(12), 6, 8, 0.05) == 7.0  # flat: the middle


def test_stitch_is_seamless_for_identical_windows():
    sr, W = 100, 4
    t = np.arange(11 * sr) / sr
    full = np.sin(2 * np.pi * 3 * t)[None].astype(np.float32)
    starts = synthesis.window_starts(11, W, 1)
    pieces = [(s, full[:, s * sr:(s + W) * sr]) for s in starts]
    out = synthesis.stitch(pieces, np.zeros(11), sr, 11 * sr, W, fade_s=0.1)
    # equal-power fades of identical material deviate by at most the sin+cos bump (sqrt 2)
    assert out.shape == full.shape
    assert np.max(np.abs(out)) <= np.sqrt(2) + 1e-5
    far = np.ones(11 * sr, bool)
    for prev, nxt in zip(starts, starts[1:]):      # overlaps hold the seams
        far[nxt * sr:(prev + W) * sr] = False
    assert np.allclose(out[0, far], full[0, far], atol=1e-6)


def test_progress_reports_every_step_and_cancel_stops():
    be = LinearBackend()
    cond = synthesis.conditions_from_features(be, features(8))
    seen = []
    synthesis.synthesise(be, cond, synthesis.Settings(steps=5),
                         progress=lambda st, d, n: seen.append((st, d, n)))
    sampling = [d for st, d, n in seen if st == "sampling"]
    n_windows = len(synthesis.window_starts(8, 4, 1))
    assert sampling == list(range(1, 5 * n_windows + 1))

    def cancel(stage, done, total):
        if stage == "sampling" and done == 2:
            raise Cancelled()
    calls = len(be.denoise_batches)
    with pytest.raises(Cancelled):
        synthesis.synthesise(be, cond, synthesis.Settings(steps=5), progress=cancel)
    assert len(be.denoise_batches) - calls <= 3


def test_unknown_sampler_is_a_user_error():
    from diffv2m.errors import UserError
    be = LinearBackend()
    cond = synthesis.conditions_from_features(be, features(2))
    with pytest.raises(UserError):
        synthesis.synthesise(be, cond, synthesis.Settings(sampler="nope"))


class CueBackend(LinearBackend):
    """LinearBackend with a cue track: records the cues each denoise call gets."""

    def __init__(self):
        super().__init__()
        self.config.dit.cue_channels = 2
        self.cues: list[np.ndarray] = []

    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total,
                cues=None):
        self.cues.append((float(seconds_start[0]), cues))
        return super().denoise(x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total)


def test_cue_track_reaches_the_dit_per_window_and_is_null_in_the_guidance_row():
    be = CueBackend()
    f = features(7.0, cuts=(5,))
    f.cut_times = np.array([5.25])
    cond = synthesis.conditions_from_features(be, f)
    synthesis.synthesise(be, cond, synthesis.Settings(steps=2, cfg_scale=3.0))
    rate, L = be.config.autoencoder.latent_rate, be.config.latent_frames
    seen = {}
    for start, cues in be.cues:
        assert cues.shape == (2, 2, L)                        # [cond; null], K, frames
        assert not cues[1].any()                              # the null row has no cues
        seen[start] = cues[0]
    assert sorted(seen) == [0.0, 3.0]
    for start, q in seen.items():
        k = int(np.floor((5.25 - start) * rate))
        if k < L:
            assert int(np.argmax(q[0])) == k and q[0, k] == 1.0
        else:
            assert q[0].max() < 0.05
    # a model without a cue track gets no cues argument at all (older backends keep working)
    plain = LinearBackend()
    synthesis.synthesise(plain, synthesis.conditions_from_features(plain, f),
                         synthesis.Settings(steps=2))


class BatchingBackend(LinearBackend):
    """LinearBackend that takes ``window_batch`` windows per denoise call; each row's v is its
    own row's function (as onnxruntime computes a batch), so batching must not change a bit."""

    def __init__(self, window_batch):
        super().__init__()
        self.window_batch = window_batch
        self.rows_start: list[float] = []

    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total):
        self.rows_start += [float(s) for s in seconds_start]
        return super().denoise(x, t, semantic, rhythm, colour, cls, seconds_start,
                               seconds_total)


def test_windows_sampled_side_by_side_give_the_takes_of_one_at_a_time():
    cond = synthesis.conditions_from_features(LinearBackend(), features(17.5, cuts=(2, 9, 14)))
    for cfg_scale in (2.0, 1.0):
        s = synthesis.Settings(seed=7, steps=5, cfg_scale=cfg_scale)
        one = BatchingBackend(1)
        ref = synthesis.synthesise(one, cond, s)
        n_windows = len(synthesis.window_starts(18, 4, 1))
        assert n_windows == 6
        per_call = 2 if cfg_scale != 1.0 else 1
        assert one.denoise_batches == [per_call] * (5 * n_windows)
        for group in (2, 4, 8):
            be = BatchingBackend(group)
            take = synthesis.synthesise(be, cond, s)
            assert np.array_equal(take.audio, ref.audio), group
            # ceil(6 / group) calls per step, each of (windows in it) x (2 with guidance)
            sizes = [min(group, n_windows - k) * per_call for k in range(0, n_windows, group)]
            assert be.denoise_batches == [b for b in sizes for _ in range(5)]
            # the windows of one call are told where each of them is
            assert sorted(be.rows_start) == sorted(one.rows_start)


def test_batched_windows_report_progress_in_window_steps_and_cancel():
    be = BatchingBackend(4)
    cond = synthesis.conditions_from_features(be, features(17.5))
    seen = []
    synthesis.synthesise(be, cond, synthesis.Settings(steps=5),
                         progress=lambda st, d, n: seen.append((st, d, n)))
    sampling = [(d, n) for st, d, n in seen if st == "sampling"]
    # 6 windows: a call of 4 windows (4 window-steps per step), then one of 2
    assert [d for d, _ in sampling] == [4, 8, 12, 16, 20, 22, 24, 26, 28, 30]
    assert {n for _, n in sampling} == {30}
    stages = [st for st, _, _ in seen]
    assert stages.index("decoding audio") > stages.index("sampling")

    def cancel(stage, done, total):
        if stage == "sampling" and done >= 8:
            raise Cancelled()
    calls = len(be.denoise_batches)
    with pytest.raises(Cancelled):
        synthesis.synthesise(be, cond, synthesis.Settings(steps=5), progress=cancel)
    assert len(be.denoise_batches) - calls == 2


def test_window_batch_defaults_to_one():
    assert synthesis.window_batch(LinearBackend()) == 1
    assert synthesis.window_batch(BatchingBackend(3)) == 3
    assert synthesis.window_batch(BatchingBackend(0)) == 1


def test_unset_steps_and_guidance_are_the_models_own_and_recorded_as_numbers():
    """Settings.steps / cfg_scale None: the model's ModelConfig.default_steps and
    default_cfg_scale, used and recorded (a take's settings reproduce it)."""
    cond = synthesis.conditions_from_features(LinearBackend(), features(3.0))
    be = LinearBackend()
    be.config.default_steps, be.config.default_cfg_scale = 7, 1.0
    take = synthesis.synthesise(be, cond, synthesis.Settings(seed=2))
    assert (take.settings.steps, take.settings.cfg_scale) == (7, 1.0)
    assert len(be.denoise_batches) == 7                   # one window, no guidance batch
    again = synthesis.synthesise(LinearBackend(), cond, take.settings)
    assert np.array_equal(again.audio, take.audio)
    assert synthesis.Settings().to_dict()["steps"] is None
    with pytest.raises(UserError, match="--steps 0"):
        synthesis.synthesise(be, cond, synthesis.Settings(steps=0))
