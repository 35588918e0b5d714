"""The torch backend of :mod:`diffv2m.synthesis`: a loaded DiffV2M checkpoint behind numpy."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .errors import UserError


class TorchBackend:
    """Runs the four networks of a :class:`diffv2m.models.diffv2m.DiffV2M` with torch."""

    def __init__(self, model: torch.nn.Module, config: ModelConfig, *, device: str = "cpu",
                 model_id: str = ""):
        self.model = model.eval().to(device)
        self.config = config
        self.device = torch.device(device)
        self.model_id = model_id
        self.name = f"torch-{self.device.type}"

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @torch.inference_mode()
    def encode_semantic(self, frames: np.ndarray) -> np.ndarray:
        from .jobs import semantic_pixels
        pix = semantic_pixels(frames, self.config.semantic.image_size, self.config.semantic.backend)
        out = [self.model.semantic_encoder(self._t(pix[i:i + 64])) for i in range(0, len(pix), 64)]
        return torch.cat(out).float().cpu().numpy() if out else np.zeros(
            (0, self.config.semantic_dim), np.float32)

    @torch.inference_mode()
    def predict_rhythm(self, semantic, scene_cut, pseudo_beat, cls) -> np.ndarray:
        out = self.model.rhythm_predictor(self._t(semantic.astype(np.float32)),
                                          self._t(scene_cut.astype(np.float32)),
                                          self._t(pseudo_beat.astype(np.float32)),
                                          self._t(cls.astype(np.int64)))
        return out.float().cpu().numpy()

    @torch.inference_mode()
    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total):
        v = self.model.dit(self._t(x), self._t(t), self._t(semantic), self._t(rhythm),
                           self._t(colour), self._t(cls), self._t(seconds_start),
                           self._t(seconds_total))
        return v.float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        z_t = self._t(z) * float(self.config.latent_scale)
        return self.model.autoencoder.decode(z_t).float().cpu().numpy()


def load_backend(checkpoint: str | os.PathLike | None = None, *, device: str = "cpu",
                 threads: int | None = None) -> TorchBackend:
    """Load a checkpoint (the embedded default when ``None``) as a :class:`TorchBackend`."""
    from .assets import default_checkpoint
    from .jobs import file_sha256
    from .models.checkpoint import load_checkpoint
    path = Path(checkpoint) if checkpoint else default_checkpoint()
    if not path.exists():
        if checkpoint is None:
            raise UserError(f"{path}: the embedded default model is missing from this install")
        raise UserError(f"{path}: no such checkpoint")
    if threads:
        torch.set_num_threads(threads)
    model, config, _meta = load_checkpoint(path, map_location=device)
    return TorchBackend(model, config, device=device,
                        model_id=f"{path.name}:{file_sha256(path)[:16]}")
