"""Model configurations as plain dataclasses (torch-free, JSON round-trippable).

Two configs ship: ``small`` (the embedded default, CPU-sized) and ``paper`` (the published
Diff-V2M sizes, ../shared/DESIGN.md section 2).  Every size used by a network is a field here.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .features.cue_track import CUE_CHANNELS

FUSIONS = ("average", "FiLM", "FiLM_choose", "gate", "choose", "semantic")


@dataclass
class AutoencoderConfig:
    """Oobleck-style waveform VAE (encoder, KL bottleneck, decoder)."""
    sample_rate: int = 24000
    audio_channels: int = 1
    # widths base * (1,) + mults = 8, 16, 32, 64, 128, 128 (full rate -> latent rate):
    # 1.66 M parameters; decoding 30 s takes ~1.4 s of one CPU core (16 at full rate: ~2.3 s).
    base_channels: int = 8
    channel_mults: tuple[int, ...] = (2, 4, 8, 16, 16)
    strides: tuple[int, ...] = (2, 4, 5, 5, 5)      # product = hop (samples per latent frame)
    latent_dim: int = 32
    use_snake: bool = True
    weight_norm: bool = True        # weight-norm parametrization on every conv (as Oobleck)
    final_tanh: bool = False        # tanh on the decoder output (Oobleck: off)

    @property
    def hop(self) -> int:
        h = 1
        for s in self.strides:
            h *= s
        return h

    @property
    def latent_rate(self) -> float:
        return self.sample_rate / self.hop


@dataclass
class ScoreAutoencoderConfig:
    """The score family's autoencoder (``diffv2m.models.score_autoencoder``): a multi-track
    piano roll at ``frame_rate`` (the cue track's 24 frames/s) -> a continuous latent at
    ``frame_rate / hop`` that the DiT denoises -> note probabilities (DESIGN.md section 3).

    ``sample_rate`` / ``audio_channels`` are what a take is rendered at by default (FluidSynth,
    48 kHz stereo); ``analysis_rate`` is the corpus audio rate the training features use."""
    frame_rate: float = 24.0
    pitch_low: int = 24             # roll pitch range [pitch_low, pitch_low + pitches)
    pitches: int = 72               # (GM drum keys 35..81 fall in the same range)
    hidden: int = 128
    hop: int = 2                    # roll frames per latent frame
    latent_dim: int = 16
    sample_rate: int = 48000
    audio_channels: int = 2
    analysis_rate: int = 24000

    @property
    def latent_rate(self) -> float:
        return self.frame_rate / self.hop


@dataclass
class SemanticEncoderConfig:
    """The image encoder producing one semantic token per second."""
    backend: str = "cnn"            # "cnn" (trained here) or "open_clip" (local weights)
    image_size: int = 64
    width: int = 32
    out_dim: int = 128
    clip_model: str = "ViT-B-32"


@dataclass
class RhythmPredictorConfig:
    """Transformer from semantic tokens (+class token, cut and motion embeddings) to the ODF."""
    width: int = 128
    depth: int = 3
    heads: int = 4
    use_scene_cut: bool = True
    use_pseudo_beat: bool = True    # motion-energy "pseudo beat" per second
    out_dim: int = 1                # 1 for ODF (16 for low-res mel / tempogram variants)
    max_seconds: int = 32
    output_activation: str = "sigmoid"  # "sigmoid" (targets in [0, 1]) or "none" (published)
    pseudo_hidden: int = 128        # pseudo-beat MLP: 1 -> pseudo_hidden -> semantic_dim
    ff_mult: int = 4


@dataclass
class DiTConfig:
    embed_dim: int = 256
    depth: int = 6
    heads: int = 4
    cond_token_dim: int = 128       # context tokens are projected to this width
    global_cond_dim: int = 384      # class + seconds_start + seconds_total embeddings
    global_cond_type: str = "adaLN" # "adaLN" (paper text) or "prepend" (published code)
    fusion: str = "FiLM_choose"     # one of FUSIONS
    choose_threshold: float = 0.2   # FiLM_choose / choose: semantic branch while t > threshold
    ff_mult: int = 4
    num_classes: int = 3
    max_seconds: int = 32           # seconds_start / seconds_total range
    cfg_dropout: float = 0.1        # per condition stream, in training
    published_wiring: bool = False  # reproduce the released code's rhythm->emotion wiring
    published_norms: bool = False   # released code: residual replaced by its LayerNorm before
                                    # the cross-attention stage (instead of pre-norm residuals)
    context_pos_emb: str = "learned"  # per-second positions on context tokens:
                                    # "learned", "sinusoidal" or "none" (published)
    seconds_tokens: bool = False    # append seconds_start/total tokens to semantic + rhythm ctx
    rotary: bool = True             # rotary positions on latent tokens (else sinusoidal added)
    timestep_features: int = 256    # Fourier features of t (published 256)
    fusion_t_dim: int = 64          # t -> fusion_t_dim linear feeding FiLM / gate MLPs
    fusion_hidden: int = 256        # FiLM MLP hidden width
    rhythm_hidden: int = 128        # rhythm conditioner 1 -> rhythm_hidden -> cond_token_dim
    colour_hidden: int = 256        # colour conditioner 3072 -> colour_hidden -> cond_token_dim
    cue_channels: int = 0           # frame-aligned cue track (cuts, motion) added to the latent
                                    # tokens; 0 = off (paper), CUE_CHANNELS = on


@dataclass
class ModelConfig:
    name: str = "small"
    latent_family: str = "audio"    # "audio" (waveform VAE) or "score" (piano-roll AE)
    window_seconds: int = 10        # one DiT window; longer music is made in overlapping windows
    overlap_seconds: int = 2
    semantic_dim: int = 128         # = semantic.out_dim (512 for CLIP)
    colour_dim: int = 3072
    latent_scale: float = 1.0       # DiT works on z / latent_scale (std of training latents)
    default_cfg_scale: float = 3.0  # guidance when the user gives none (chosen on val)
    default_steps: int = 25         # sampler steps when the user gives none (chosen on val)
    # the latent family's autoencoder: AutoencoderConfig ("audio") or ScoreAutoencoderConfig
    autoencoder: AutoencoderConfig | ScoreAutoencoderConfig = field(default_factory=AutoencoderConfig)
    semantic: SemanticEncoderConfig = field(default_factory=SemanticEncoderConfig)
    rhythm: RhythmPredictorConfig = field(default_factory=RhythmPredictorConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)

    @property
    def sample_rate(self) -> int:
        return self.autoencoder.sample_rate

    @property
    def analysis_rate(self) -> int:
        """Sample rate the training features (ground-truth ODF) are computed at."""
        return getattr(self.autoencoder, "analysis_rate", self.autoencoder.sample_rate)

    @property
    def latent_frames(self) -> int:
        """Latent frames in one window."""
        return int(round(self.window_seconds * self.autoencoder.latent_rate))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        ae = ScoreAutoencoderConfig if d.get("latent_family") == "score" else AutoencoderConfig
        sub = {"autoencoder": ae, "semantic": SemanticEncoderConfig,
               "rhythm": RhythmPredictorConfig, "dit": DiTConfig}
        for key, klass in sub.items():
            if key in d and isinstance(d[key], dict):
                vals = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d[key].items()}
                d[key] = klass(**vals)
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> "ModelConfig":
        return cls.from_dict(json.loads(s))


def small_config() -> ModelConfig:
    """The embedded default: sized so it trains on a 2-core CPU in about an hour and generates
    30 s of music in seconds (DESIGN.md section 3; figures in the model card)."""
    return ModelConfig(
        name="small",
        semantic_dim=64,
        autoencoder=AutoencoderConfig(latent_dim=16),
        semantic=SemanticEncoderConfig(image_size=64, width=16, out_dim=64),
        rhythm=RhythmPredictorConfig(width=64, depth=2, heads=4, pseudo_hidden=64, ff_mult=2),
        dit=DiTConfig(embed_dim=128, depth=4, heads=4, cond_token_dim=64, global_cond_dim=192,
                      timestep_features=64, fusion_t_dim=32, fusion_hidden=64,
                      rhythm_hidden=64, colour_hidden=128, ff_mult=2,
                      cue_channels=CUE_CHANNELS),
    )


def score_config() -> ModelConfig:
    """The score family on the ``small`` networks: the same DiT, rhythm predictor and
    semantic encoder, denoising a 16-channel piano-roll latent at 12 frames/s.  Guidance 2
    by default (on the validation split it kept onsets on cuts and let seeds and the
    picture's mode through better than 3) and 15 sampler steps (every validation figure
    within noise of 25, and of 10; diffv2m/assets/score/MODEL_CARD.md)."""
    cfg = small_config()
    cfg.name = "score"
    cfg.default_cfg_scale = 2.0
    cfg.default_steps = 15
    cfg.latent_family = "score"
    cfg.autoencoder = ScoreAutoencoderConfig()
    return cfg


def paper_config() -> ModelConfig:
    """The published Diff-V2M sizes (DESIGN.md section 2)."""
    return ModelConfig(
        name="paper",
        window_seconds=30,
        overlap_seconds=5,
        semantic_dim=512,
        colour_dim=3072,
        autoencoder=AutoencoderConfig(sample_rate=44100, audio_channels=2, base_channels=128,
                                      channel_mults=(1, 2, 4, 8, 16), strides=(2, 4, 4, 8, 8),
                                      latent_dim=64, use_snake=True),
        semantic=SemanticEncoderConfig(backend="open_clip", image_size=224, out_dim=512,
                                       clip_model="ViT-B-32"),
        rhythm=RhythmPredictorConfig(width=512, depth=12, heads=8, max_seconds=30,
                                     output_activation="none"),
        dit=DiTConfig(embed_dim=1536, depth=24, heads=24, cond_token_dim=768,
                      global_cond_dim=2304, global_cond_type="prepend", fusion="FiLM_choose",
                      max_seconds=30, published_norms=True, context_pos_emb="none",
                      seconds_tokens=True, rhythm_hidden=512, colour_hidden=1024),
    )


CONFIGS = {"small": small_config, "score": score_config, "paper": paper_config}


def add_config_option(parser, default: str | None, help: str) -> None:
    """The ``--config`` option of every command that builds a model: a name in
    :data:`CONFIGS` or a JSON file, read with :func:`resolve_config`."""
    parser.add_argument("--config", default=default, help=help)


def get_config(name: str) -> ModelConfig:
    from .errors import UserError
    if name not in CONFIGS:
        raise UserError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]()


def resolve_config(name_or_path: str) -> ModelConfig:
    """A config by name (``small``, ``paper``) or from a JSON file written by ``to_json``."""
    from pathlib import Path

    from .errors import UserError
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]()
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise UserError(f"{path}: no such config file")
        try:
            return ModelConfig.from_json(path.read_text())
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a model config ({exc})") from None
    return get_config(name_or_path)
