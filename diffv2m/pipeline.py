"""The torch backend of :mod:`diffv2m.synthesis`: a loaded DiffV2M checkpoint behind numpy."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .errors import UserError


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend:
    """Runs the four networks of a :class:`diffv2m.models.diffv2m.DiffV2M` with torch.

    ``precision`` ``bf16``/``fp16`` runs the networks under autocast (weights stay fp32, so
    norms and reductions keep fp32 accumulation); results always come back as float32.
    """

    def __init__(self, model: torch.nn.Module, config: ModelConfig, *, device: str = "cpu",
                 model_id: str = "", precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.model = model.eval().to(device)
        self.config = config
        self.device = torch.device(device)
        self.model_id = model_id
        self.precision = precision
        self.name = f"torch-{self.device.type}" + ("" if precision == "fp32" else f"-{precision}")
        self.mood_reader = None          # diffv2m.features.mood.MoodReader beside the checkpoint

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    @torch.inference_mode()
    def encode_semantic(self, frames: np.ndarray) -> np.ndarray:
        from .features.semantic import semantic_pixels
        pix = semantic_pixels(frames, self.config.semantic.image_size, self.config.semantic.backend)
        with self._autocast():
            out = [self.model.semantic_encoder(self._t(pix[i:i + 64]))
                   for i in range(0, len(pix), 64)]
        return torch.cat(out).float().cpu().numpy() if out else np.zeros(
            (0, self.config.semantic_dim), np.float32)

    @torch.inference_mode()
    def predict_rhythm(self, semantic, scene_cut, pseudo_beat, cls) -> np.ndarray:
        with self._autocast():
            out = self.model.rhythm_predictor(self._t(semantic.astype(np.float32)),
                                              self._t(scene_cut.astype(np.float32)),
                                              self._t(pseudo_beat.astype(np.float32)),
                                              self._t(cls.astype(np.int64)))
        return out.float().cpu().numpy()

    @torch.inference_mode()
    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total,
                cues=None):
        with self._autocast():
            v = self.model.dit(self._t(x), self._t(t), self._t(semantic), self._t(rhythm),
                               self._t(colour), self._t(cls), self._t(seconds_start),
                               self._t(seconds_total),
                               None if cues is None else self._t(cues.astype(np.float32)))
        return v.float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        z_t = self._t(z) * float(self.config.latent_scale)
        with self._autocast():
            return self.model.autoencoder.decode(z_t).float().cpu().numpy()


def load_backend(checkpoint: str | os.PathLike | None = None, *, device: str = "cpu",
                 threads: int | None = None, precision: str = "fp32") -> TorchBackend:
    """Load a checkpoint (the embedded default when ``None``) as a :class:`TorchBackend`."""
    from .assets import default_checkpoint
    from .cache import file_sha256
    from .models.checkpoint import load_checkpoint
    path = Path(checkpoint) if checkpoint else default_checkpoint()
    if not path.exists():
        if checkpoint is None:
            raise UserError(f"{path}: the embedded default model is missing from this install")
        raise UserError(f"{path}: no such checkpoint")
    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: this torch build sees no CUDA GPU")
    model, config, _meta = load_checkpoint(path, map_location=device)
    backend = TorchBackend(model, config, device=device, precision=precision,
                           model_id=f"{path.name}:{file_sha256(path)[:16]}")
    from .features.mood import load_beside
    backend.mood_reader = load_beside(path.parent)     # the picture's mode, when trained
    return backend
