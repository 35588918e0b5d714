"""The Diff-V2M container: every network of the model in one ``nn.Module``.

Children (checkpoint keys are prefixed by these names):

* ``autoencoder``      :class:`diffv2m.models.autoencoder.Autoencoder` (waveform VAE) or, for
                       ``latent_family = "score"``, :class:`.score_autoencoder.ScoreAutoencoder`
                       (frozen while the prior trains)
* ``semantic_encoder`` :class:`.semantic_cnn.SemanticCNN` for backend ``"cnn"``; ``nn.Identity``
                       for ``"open_clip"`` (CLIP features arrive precomputed)
* ``rhythm_predictor`` :class:`.rhythm_predictor.RhythmPredictor`
* ``dit``              :class:`.dit.DiT` (owns the conditioners as ``dit.conditioner``)
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..config import ModelConfig
from .dit import DiT
from .rhythm_predictor import RhythmPredictor
from .semantic_cnn import SemanticCNN


def autoencoder_for(config: ModelConfig) -> nn.Module:
    """The latent family's autoencoder (``families.<family>.autoencoder``, "module:Class"):
    the waveform VAE ("audio") or the score AE ("score")."""
    import importlib

    from ..families import family_of
    module, name = family_of(config).autoencoder.split(":")
    return getattr(importlib.import_module(module), name)(config.autoencoder)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class DiffV2M(nn.Module):
    """``DiffV2M(config)``; ``autoencoder`` may be given (an ``nn.Module``, or a factory
    ``config.autoencoder -> nn.Module``) to use something other than the project's
    :class:`Autoencoder` (tests); by default the real one is imported lazily."""

    def __init__(self, config: ModelConfig,
                 autoencoder: nn.Module | Callable[..., nn.Module] | None = None):
        super().__init__()
        self.config = config
        if autoencoder is None:
            autoencoder = autoencoder_for(config)
        elif not isinstance(autoencoder, nn.Module):
            autoencoder = autoencoder(config.autoencoder)
        self.autoencoder = autoencoder
        if config.semantic.backend == "cnn":
            self.semantic_encoder = SemanticCNN(config)
        elif config.semantic.backend == "open_clip":
            self.semantic_encoder = nn.Identity()
        else:
            raise ValueError(f"unknown semantic backend {config.semantic.backend!r}")
        self.rhythm_predictor = RhythmPredictor(config)
        self.dit = DiT(config)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per child (``dit`` split into ``dit.conditioner`` and the rest) + total."""
        out = {name: count_parameters(m) for name, m in self.named_children()}
        cond = count_parameters(self.dit.conditioner)
        out["dit.conditioner"] = cond
        out["dit.core"] = out["dit"] - cond
        out["total"] = count_parameters(self)
        return out
