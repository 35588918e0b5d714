"""Semantic image encoders: one token per second from the frame at each second's centre.

* :class:`SemanticEncoder` is the protocol the synthesis code uses (``out_dim``,
  ``image_size``, ``encode(frames [T,S,S,3] uint8) -> [T, d] float32``).
* :func:`preprocess` turns uint8 frames into normalised network input ``[T, 3, S, S]``.
* :class:`OpenClipEncoder` runs an open_clip image tower (the paper's CLIP ViT-B/32, 512-d)
  from LOCAL weights only: the architecture is built with ``pretrained=None`` and the state
  dict is read from a .safetensors or torch file (``weights_only=True``).  Nothing is
  downloaded.  torch and open_clip are imported only when such an encoder is made, so this
  module stays importable without torch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import UserError
from .image import resize

# OpenAI CLIP's image normalisation (also open_clip's default for ViT-B-32).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@runtime_checkable
class SemanticEncoder(Protocol):
    out_dim: int
    image_size: int

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """``[T, S, S, 3]`` uint8 -> ``[T, out_dim]`` float32."""
        ...


def preprocess(frames: np.ndarray, size: int, mean: Sequence[float] = CLIP_MEAN,
               std: Sequence[float] = CLIP_STD) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 (or one ``[H, W, 3]``) -> ``[T, 3, size, size]`` float32.

    Frames are resized (area/linear) to ``size x size`` when needed, scaled to [0, 1],
    then ``(x - mean) / std`` per channel.
    """
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected frames [T,H,W,3], got shape {a.shape}")
    x = resize(a, size, size) / 255.0
    m = np.asarray(mean, np.float32).reshape(1, 1, 1, 3)
    s = np.asarray(std, np.float32).reshape(1, 1, 1, 3)
    x = (x - m) / s
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def semantic_normalisation(backend: str = "cnn") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` the semantic encoder of ``backend`` expects on [0, 1] pixels."""
    if backend == "open_clip":
        return CLIP_MEAN, CLIP_STD
    return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def semantic_pixels(frames: np.ndarray, image_size: int, backend: str = "cnn") -> np.ndarray:
    """Frames ``[T,S,S,3]`` uint8 -> network input ``[T,3,S,S]`` float32 (both backends)."""
    return preprocess(frames, image_size, *semantic_normalisation(backend))


def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Tensors from a .safetensors file or a torch file (``weights_only=True``).

    A checkpoint that wraps the weights (``{"state_dict": ...}``) is unwrapped, and a
    ``module.`` prefix (DataParallel) is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file
            sd: Any = load_file(str(path))
        else:
            import torch
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as exc:  # damaged file, pickle refused by weights_only, ...
        raise UserError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise UserError(f"{path}: weights file holds no state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def _create_open_clip(model_name: str):
    import open_clip
    return open_clip.create_model(model_name, pretrained=None)


class OpenClipEncoder:
    """An open_clip model's image tower as a :class:`SemanticEncoder` (torch, CPU by default)."""

    def __init__(self, model: Any, *, image_size: int, out_dim: int,
                 mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 device: str = "cpu", batch_size: int = 32, normalize: bool = False):
        import torch  # noqa: F401  (fail early with a clear ModuleNotFoundError)
        self.model = model.to(device).eval()
        self.image_size = int(image_size)
        self.out_dim = int(out_dim)
        self.mean, self.std = tuple(mean), tuple(std)
        self.device = device
        self.batch_size = int(batch_size)
        self.normalize = normalize

    @classmethod
    def from_file(cls, path: str | os.PathLike, model_name: str = "ViT-B-32", *,
                  create_model: Callable[[str], Any] | None = None, **kw: Any) -> "OpenClipEncoder":
        """Build ``model_name`` with no pretrained weights and load ``path`` into it (strict)."""
        sd = load_state_dict(path)
        model = (create_model or _create_open_clip)(model_name)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"{path}: weights do not fit open_clip {model_name} ({first})") from None
        visual = getattr(model, "visual", None)
        size = getattr(visual, "image_size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        out_dim = getattr(visual, "output_dim", None) or kw.pop("out_dim", 512)
        mean = getattr(visual, "image_mean", None) or CLIP_MEAN
        std = getattr(visual, "image_std", None) or CLIP_STD
        return cls(model, image_size=int(size), out_dim=int(out_dim), mean=mean, std=std, **kw)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """``[T, H, W, 3]`` uint8 -> ``[T, out_dim]`` float32 image embeddings."""
        import torch
        x = preprocess(frames, self.image_size, self.mean, self.std)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), self.batch_size):
                xb = torch.from_numpy(x[i:i + self.batch_size]).to(self.device)
                y = self.model.encode_image(xb)
                if self.normalize:
                    y = torch.nn.functional.normalize(y, dim=-1)
                out.append(y.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.out_dim), np.float32)
        return np.concatenate(out).astype(np.float32)
