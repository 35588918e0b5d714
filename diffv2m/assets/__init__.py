"""Paths of the embedded models (weights trained by this project; see each MODEL_CARD.md).

Two ship: ``score`` (the score family, ``diffv2m generate``'s default: notes rendered by
FluidSynth, with MIDI and stems) in ``score/`` and ``audio`` (the waveform-latent ``small``
model, the paper's family) in ``default/``.  ``default_*`` name the audio model, as before.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"score": "score", "audio": "default"}     # --model name -> folder
DEFAULT_MODEL = "score"


def default_dir() -> Path:
    return HERE / "default"


def default_checkpoint() -> Path:
    return default_dir() / "model.safetensors"


def default_onnx_dir() -> Path:
    return default_dir() / "onnx"


def model_dir(name: str) -> Path:
    return HERE / MODELS[name]


def model_checkpoint(name: str) -> Path:
    return model_dir(name) / "model.safetensors"


def model_onnx_dir(name: str) -> Path:
    return model_dir(name) / "onnx"
