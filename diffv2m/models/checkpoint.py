"""Checkpoints: one safetensors file with every tensor of a :class:`DiffV2M` and, in its
metadata, ``config`` (ModelConfig JSON), ``meta`` (JSON of the caller's dict) and
``format = "diffv2m"``.  Written atomically; loaded strictly.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..config import ModelConfig
from ..errors import UserError

FORMAT = "diffv2m"


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, config: ModelConfig,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write ``model.state_dict()`` (persistent buffers included) to ``path``; returns it."""
    from safetensors.torch import save_file
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": config.to_json(),
                "meta": json.dumps(meta or {}, sort_keys=True, default=str)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """``(config, meta)`` of a checkpoint without reading its tensors."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:                                    # corrupt / not safetensors
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if "config" not in md:
        raise UserError(f"{path}: not a diffv2m checkpoint (no config in its metadata)")
    try:
        config = ModelConfig.from_json(md["config"])
        meta = json.loads(md.get("meta", "{}"))
    except Exception as e:
        raise UserError(f"{path}: unreadable config in checkpoint metadata ({e})") from None
    return config, meta


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    autoencoder=None):
    """``(model, config, meta)``: a :class:`DiffV2M` built from the stored config, loaded
    strictly.  ``autoencoder`` is passed to :class:`DiffV2M` (tests only)."""
    from safetensors.torch import load_file
    from .diffv2m import DiffV2M
    path = Path(path)
    config, meta = read_metadata(path)
    try:
        sd = load_file(str(path), device=str(map_location))
    except Exception as e:
        raise UserError(f"{path}: corrupt checkpoint ({e})") from None
    model = DiffV2M(config, autoencoder=autoencoder)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UserError(f"{path}: checkpoint does not match its config "
                        f"({' '.join(first[:3])[:300]})") from None
    return model.to(map_location).eval(), config, meta
