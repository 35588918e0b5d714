"""Paths of the embedded default model (weights trained by this project; see MODEL_CARD.md)."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def default_dir() -> Path:
    return HERE / "default"


def default_checkpoint() -> Path:
    return default_dir() / "model.safetensors"


def default_onnx_dir() -> Path:
    return default_dir() / "onnx"
