"""A tiny paired corpus for training tests: videos cut on the beats of click tracks.

Independent of the corpus builder (which has its own tests) so the training loops can be
tested quickly: 6 clips of 4 s (4 train, 1 val, 1 test) and a tiny model config.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from diffv2m.config import (AutoencoderConfig, DiTConfig, ModelConfig, RhythmPredictorConfig,
                            SemanticEncoderConfig)

from mediagen import make_click_track, make_video

SR = 24000


def tiny_config() -> ModelConfig:
    return ModelConfig(
        name="tiny", window_seconds=4, overlap_seconds=1, semantic_dim=16,
        autoencoder=AutoencoderConfig(sample_rate=SR, base_channels=4, channel_mults=(1, 2, 2, 4, 4),
                                      strides=(2, 4, 5, 5, 5), latent_dim=8),
        semantic=SemanticEncoderConfig(image_size=32, width=8, out_dim=16),
        rhythm=RhythmPredictorConfig(width=16, depth=1, heads=2, pseudo_hidden=16, ff_mult=2),
        dit=DiTConfig(embed_dim=32, depth=1, heads=2, cond_token_dim=16, global_cond_dim=48,
                      timestep_features=32, fusion_t_dim=16, fusion_hidden=32, rhythm_hidden=16,
                      colour_hidden=32, ff_mult=2, cue_channels=2),
    )


def build(root: Path, n: int = 6) -> Path:
    """Write the clips and ``manifest.jsonl``; returns the manifest path."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        bpm = 90 + 15 * i
        beat = 60.0 / bpm
        cuts = [round(k * 2 * beat * 12) / 12 for k in range(1, 20) if k * 2 * beat < 3.9]
        make_video(root / f"clip{i}.mp4", seconds=4, fps=Fraction(12), size=(64, 48),
                   cut_times=cuts)
        make_click_track(root / f"clip{i}.wav", bpm=bpm, seconds=4, sr=SR, freq=600 + 100 * i)
        split = "train" if i < n - 2 else ("val" if i == n - 2 else "test")
        rows.append({"id": f"clip{i}", "video": f"clip{i}.mp4", "audio": f"clip{i}.wav",
                     "duration": 4.0, "sample_rate": SR, "fps": 12, "split": split,
                     "cls": i % 3, "tempo": bpm, "mode": "major" if i % 2 else "minor",
                     "beat_times": [k * beat for k in range(int(4 / beat) + 1)],
                     "cut_times": cuts})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "tiny.json").write_text(tiny_config().to_json())
    return manifest


def tiny_score_config() -> ModelConfig:
    """The tiny networks on the score family (piano-roll latent at 12 frames/s)."""
    from diffv2m.config import ScoreAutoencoderConfig
    cfg = tiny_config()
    cfg.name = "tiny-score"
    cfg.latent_family = "score"
    cfg.autoencoder = ScoreAutoencoderConfig(hidden=16, latent_dim=4)
    return cfg


def build_score(root: Path, n: int = 6) -> Path:
    """:func:`build`, plus each clip's score sidecar: a melody, a bass and drums on the click
    track's beats (repeated notes included), as the corpus builder writes them."""
    from diffv2m.data.scores import save_score
    from diffv2m.score.events import Ensemble, Note, Score
    manifest = build(root, n)
    for i in range(n):
        bpm = 90 + 15 * i
        beat = 60.0 / bpm
        notes = []
        for k in range(int(4 / beat)):
            t = k * beat
            scale = (60, 62, 64, 65, 67, 69, 71, 72) if i % 2 else (57, 59, 60, 62, 64, 65, 67, 69)
            notes.append(Note("melody", scale[(k * (i + 1)) % 8], t, t + 0.9 * beat, 70 + 5 * (k % 4)))
            notes.append(Note("bass", 36 + (k // 2) % 5, t, t + 0.45 * beat, 80))
            notes.append(Note("drums", 36 if k % 2 == 0 else 38, t, t + 0.06, 100))
            notes.append(Note("drums", 42, t, t + 0.06, 60))
        score = Score(notes=[x for x in notes if x.start < 4.0], duration=4.0,
                      ensemble=Ensemble("piano", {"melody": 0, "bass": 32}))
        save_score(root / f"clip{i}.roll.npz", score)
    (root / "tiny_score.json").write_text(tiny_score_config().to_json())
    return manifest
