"""A small image encoder for 1-fps frames: the semantic backend trained here ("cnn").

    images [B, 3, S, S] (preprocessed floats)
      -> 4 x [Conv3x3 -> GroupNorm -> SiLU -> Conv3x3 stride 2 -> GroupNorm -> SiLU]
         (widths w, 2w, 4w, 8w; S/16 spatial)
      -> global average pool [B, 8w] -> Linear -> [B, out_dim]
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ConvBlock(nn.Module):
    """Conv3x3 (c_in -> c_out) then stride-2 Conv3x3, each with GroupNorm + SiLU: halves S."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(_groups(c_out), c_out), nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, stride=2, padding=1), nn.GroupNorm(_groups(c_out), c_out),
            nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SemanticCNN(nn.Module):
    """``forward(images [B, 3, S, S]) -> [B, out_dim]``."""

    def __init__(self, config: ModelConfig | None = None, *, width: int | None = None,
                 out_dim: int | None = None, blocks: int = 4):
        super().__init__()
        w = width if width is not None else config.semantic.width
        out = out_dim if out_dim is not None else config.semantic.out_dim
        chans = [3] + [w * 2 ** i for i in range(blocks)]
        self.blocks = nn.Sequential(*[ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.head = nn.Linear(chans[-1], out)
        self.out_dim = out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.blocks(images)
        return self.head(h.mean(dim=(2, 3)))
