"""The picture's mood read as a musical mode: a logistic model of the colour grade (numpy only).

The music's mood follows the picture: dark, cool, desaturated footage goes with minor music,
bright, warm, saturated footage with major (the corpus is graded this way from its music,
:func:`diffv2m.data.footage.grade_params`, a function of the mode and the energy).  The DiT
sees the same colour histograms through its emotion cross-attention but, trained on a few
hundred clips, follows the mode only about as often as always saying "major" would; this
reader makes the mode an explicit, measured prediction, as the rhythm predictor makes the ODF
one.  The score family then writes the generated notes in that mode
(:func:`diffv2m.score.key.to_mode`).

Inputs (:func:`mood_inputs`, 31 numbers): the colour histogram's saturation marginal (12 bins)
and value (brightness) marginal (16 bins), averaged over the selection's seconds, and the style
class one-hot (3): the class carries the energy, which the grade mixes with the mode.  They are
standardised with the training set's mean and spread; ``p(major) = sigmoid(w . z + b)``.
Hue is left out: a scene's own colours move it more than the grade's warmth does, and without
it the validation split is read as well.

Trained by ``diffv2m train mood`` (:mod:`diffv2m.train.mood`); stored as safetensors
(``mean``, ``std``, ``weight``, ``bias``) beside the model (``MOOD_FILE``), copied into its ONNX
folder by the exporter, so both backends read the same numbers.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .colour import HUE_BINS, SAT_BINS, VAL_BINS

MOOD_FILE = "mood_reader.safetensors"
STYLE_CLASSES = 3
INPUTS = SAT_BINS + VAL_BINS + STYLE_CLASSES          # 31
INPUTS_NAME = f"saturation{SAT_BINS}+value{VAL_BINS}+class{STYLE_CLASSES}"


def mood_inputs(colour: np.ndarray, cls: int) -> np.ndarray:
    """``[T, 3072]`` colour histograms of a selection and its style class -> ``[31]`` float64."""
    c = np.asarray(colour, np.float64)
    if c.ndim != 2 or c.shape[1] != HUE_BINS * SAT_BINS * VAL_BINS:
        raise ValueError(f"colour must be [T, {HUE_BINS * SAT_BINS * VAL_BINS}], "
                         f"not {list(c.shape)}")
    h = (c.mean(axis=0) if len(c) else np.zeros(c.shape[1])).reshape(HUE_BINS, SAT_BINS,
                                                                        VAL_BINS)
    onehot = np.eye(STYLE_CLASSES)[int(np.clip(cls, 0, STYLE_CLASSES - 1))]
    return np.concatenate([h.sum(axis=(0, 2)), h.sum(axis=(0, 1)), onehot])


@dataclass(frozen=True)
class MoodReader:
    mean: np.ndarray                   # [31] of the training inputs
    std: np.ndarray                    # [31], > 0
    weight: np.ndarray                 # [31] on the standardised inputs
    bias: float
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""                       # "mood_reader.safetensors:<sha256[:16]>" once loaded

    def logit(self, inputs: np.ndarray) -> np.ndarray:
        """``w . z + b`` of :func:`mood_inputs` rows (``[31]`` or ``[N, 31]``): > 0 is major."""
        return (inputs - self.mean) / self.std @ self.weight + self.bias

    def p_major(self, colour: np.ndarray, cls: int) -> float:
        return float(1.0 / (1.0 + np.exp(-float(self.logit(mood_inputs(colour, cls))))))

    def mode(self, colour: np.ndarray, cls: int) -> str:
        """``"major"`` or ``"minor"`` (major when p(major) >= 0.5)."""
        return "major" if self.p_major(colour, cls) >= 0.5 else "minor"

    def save(self, path: str | os.PathLike) -> Path:
        """Write as safetensors (temporary file + rename)."""
        from safetensors.numpy import save_file

        from ..atomic import atomic_path
        path = Path(path)
        tensors = {"mean": self.mean, "std": self.std, "weight": self.weight,
                   "bias": np.array([self.bias])}
        meta = {"format": "diffv2m-mood-reader", "inputs": INPUTS_NAME,
                "meta": json.dumps(self.meta, sort_keys=True)}
        with atomic_path(path) as tmp:
            save_file({k: np.ascontiguousarray(v, np.float64) for k, v in tensors.items()},
                      str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MoodReader":
        """Read a file :meth:`save` wrote; a file that is not one is a one-line UserError."""
        from safetensors import safe_open

        from ..errors import UserError
        try:
            with safe_open(str(path), framework="numpy") as f:
                header = f.metadata() or {}
                t = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:                      # missing, truncated, not safetensors
            raise UserError(f"{path}: not a readable mood reader ({str(exc).splitlines()[0]})"
                            ) from None
        if header.get("format") != "diffv2m-mood-reader" or header.get("inputs") != INPUTS_NAME:
            raise UserError(f"{path}: not a mood reader for inputs {INPUTS_NAME}")
        shapes = {k: tuple(v.shape) for k, v in t.items()}
        want = {"mean": (INPUTS,), "std": (INPUTS,), "weight": (INPUTS,), "bias": (1,)}
        if shapes != want or not np.all(t["std"] > 0) or not all(
                np.all(np.isfinite(v)) for v in t.values()):
            raise UserError(f"{path}: mood reader tensors {shapes} are not {want} finite "
                            f"numbers with a positive spread")
        from ..cache import file_sha256
        return cls(mean=t["mean"], std=t["std"], weight=t["weight"], bias=float(t["bias"][0]),
                   meta=json.loads(header.get("meta", "{}")),
                   id=f"{Path(path).name}:{file_sha256(path)[:16]}")


def load_beside(folder: str | os.PathLike) -> MoodReader | None:
    """The reader in ``folder`` (a model's or its ONNX folder), or None when it has none."""
    path = Path(folder) / MOOD_FILE
    return MoodReader.load(path) if path.exists() else None
