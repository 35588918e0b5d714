"""A tiny deterministic numpy :class:`~diffv2m.synthesis.Backend` for the panel's tests.

``ToyBackend`` is a TEST DOUBLE, not a model: it lets the panel's mechanics (progress,
cancel, takes, export) be exercised in a second or two on any machine.

* ``encode_semantic``: mean colour of each frame, tiled to ``semantic_dim``.
* ``predict_rhythm``: the scene cuts plus half the motion ("pseudo beat"), clipped to [0, 1].
* ``denoise``: a fixed linear function of ``x`` plus the rhythm spread over the latent frames
  (``v = 0.3 x - rhythm``), so the sampled latent carries the rhythm.
* ``decode``: a 220 Hz sine whose amplitude follows the latent's (rhythm-driven) envelope.

``step_delay`` (seconds slept inside each ``denoise``) makes sampling slow enough for a test
to cancel in the middle of it; ``calls`` counts every network call by name.
"""
from __future__ import annotations

import time
from collections import Counter

import numpy as np

from diffv2m.config import (AutoencoderConfig, ModelConfig, RhythmPredictorConfig,
                            SemanticEncoderConfig)


def toy_config() -> ModelConfig:
    """A small config: 8 kHz mono, 4 s windows, 40 latent frames/s, 4 latent channels."""
    return ModelConfig(
        name="toy", window_seconds=4, overlap_seconds=1, semantic_dim=8,
        autoencoder=AutoencoderConfig(sample_rate=8000, audio_channels=1, strides=(2, 4, 5, 5),
                                      latent_dim=4),
        semantic=SemanticEncoderConfig(image_size=32, out_dim=8),
        rhythm=RhythmPredictorConfig(max_seconds=32))


class ToyBackend:
    """Deterministic numpy stand-in for the four networks (see the module docstring)."""

    name = "toy-numpy (test double)"
    model_id = "toy"

    def __init__(self, step_delay: float = 0.0):
        self.config = toy_config()
        self.step_delay = float(step_delay)
        self.calls: Counter[str] = Counter()

    def encode_semantic(self, frames: np.ndarray) -> np.ndarray:
        self.calls["encode_semantic"] += 1
        mean = np.asarray(frames, np.float32).mean(axis=(1, 2)) / 255.0      # [T, 3]
        reps = -(-self.config.semantic_dim // 3)
        return np.tile(mean, (1, reps))[:, : self.config.semantic_dim].astype(np.float32)

    def predict_rhythm(self, semantic, scene_cut, pseudo_beat, cls) -> np.ndarray:
        self.calls["predict_rhythm"] += 1
        out = np.asarray(scene_cut, np.float32) + 0.5 * np.asarray(pseudo_beat, np.float32)
        return np.clip(out, 0.0, 1.0)

    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total):
        self.calls["denoise"] += 1
        if self.step_delay:
            time.sleep(self.step_delay)
        x = np.asarray(x, np.float32)
        r = np.asarray(rhythm, np.float32)[..., 0]                            # [B, T]
        L = x.shape[-1]
        idx = np.minimum((np.arange(L) * r.shape[1]) // L, r.shape[1] - 1)
        spread = r[:, idx][:, None, :]                                        # [B, 1, L]
        return (0.3 * x - spread).astype(np.float32)

    def decode(self, z) -> np.ndarray:
        self.calls["decode"] += 1
        z = np.asarray(z, np.float32)
        cfg = self.config.autoencoder
        hop = cfg.hop
        env = np.abs(z).mean(axis=1)                                          # [B, L]
        env = env / (env.max(axis=1, keepdims=True) + 1e-6)
        env = np.repeat(env, hop, axis=1)                                     # [B, L*hop]
        n = env.shape[1]
        tone = np.sin(2 * np.pi * 220.0 * np.arange(n) / cfg.sample_rate).astype(np.float32)
        return (0.5 * env * tone)[:, None, :].astype(np.float32)
