"""Rhythm predictor: a transformer from per-second semantic tokens (+ visual cues) to the ODF.

    S' = (S - mean(S)) / std(S)                  per sample, over [T, d]     [B, T, d]
    X  = S' + Emb_cut(scene_cut) + MLP(pseudo_beat)                          [B, T, d]
    H  = Transformer(W_in [Emb_cls(cls); X])     rotary positions, N layers  [B, 1 + T, w]
    y  = sigma(W_out H[:, 1:])                   (sigma = sigmoid or identity) [B, T, out]

Names follow the published ``RhythmExtractor`` (``class_embedding``, ``scene_embedding``,
``pseudo_linear``, ``transformer.{project_in,layers,project_out,rotary_pos_emb}``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .dit import EncoderLayer, RotaryEmbedding, rotary_dim


class ExtractorTransformer(nn.Module):
    """``[B, N, d_in] -> [B, N, d_out]``: ``project_in`` -> pre-norm layers -> ``project_out``."""

    def __init__(self, dim_in: int, width: int, depth: int, heads: int, dim_out: int,
                 ff_mult: int = 4):
        super().__init__()
        self.project_in = nn.Linear(dim_in, width, bias=False)
        self.layers = nn.ModuleList([EncoderLayer(width, heads, ff_mult) for _ in range(depth)])
        self.project_out = nn.Linear(width, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(rotary_dim(width // heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project_in(x)
        rot = self.rotary_pos_emb(h.shape[1])
        rot = (rot[0].to(h.dtype), rot[1].to(h.dtype))
        for layer in self.layers:
            h = layer(h, rotary=rot)
        return self.project_out(h)


def normalise_per_sample(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over all but the batch axis."""
    dims = tuple(range(1, x.dim()))
    return (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + eps)


class RhythmPredictor(nn.Module):
    """``forward(semantic [B,T,d], scene_cut [B,T], pseudo_beat [B,T], cls [B]) -> [B,T]``
    (``[B,T,out_dim]`` when ``out_dim > 1``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        r = config.rhythm
        d = config.semantic_dim
        if r.output_activation not in ("sigmoid", "none"):
            raise ValueError(f"unknown rhythm output_activation {r.output_activation!r}")
        self.out_dim = r.out_dim
        self.sigmoid = r.output_activation == "sigmoid"
        self.transformer = ExtractorTransformer(d, r.width, r.depth, r.heads, r.out_dim, r.ff_mult)
        self.class_embedding = nn.Embedding(config.dit.num_classes, d)
        self.scene_embedding = nn.Embedding(2, d) if r.use_scene_cut else None
        self.pseudo_linear = (nn.Sequential(nn.Linear(1, r.pseudo_hidden), nn.ReLU(),
                                            nn.Linear(r.pseudo_hidden, d))
                              if r.use_pseudo_beat else None)

    def forward(self, semantic: torch.Tensor, scene_cut: torch.Tensor,
                pseudo_beat: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        x = normalise_per_sample(semantic)
        if self.scene_embedding is not None:
            x = x + self.scene_embedding((scene_cut > 0.5).long())
        if self.pseudo_linear is not None:
            x = x + self.pseudo_linear(pseudo_beat.to(x.dtype)[..., None])
        tok = self.class_embedding(cls.reshape(-1).long())[:, None, :]      # [B, 1, d]
        y = self.transformer(torch.cat([tok, x], dim=1))[:, 1:, :]          # [B, T, out]
        if self.sigmoid:
            y = torch.sigmoid(y)
        return y[..., 0] if self.out_dim == 1 else y


def rhythm_loss(pred: torch.Tensor, target: torch.Tensor, corr_weight: float = 0.0,
                eps: float = 1e-6) -> torch.Tensor:
    """``MSE(pred, target) + corr_weight * mean_b (1 - pearson(pred_b, target_b))``.

    ``pred``/``target`` ``[B, T]`` (or ``[B, T, k]``); correlation per sample over the rest.
    """
    loss = torch.mean((pred - target) ** 2)
    if corr_weight:
        p = pred.reshape(pred.shape[0], -1)
        q = target.reshape(target.shape[0], -1)
        p = p - p.mean(dim=1, keepdim=True)
        q = q - q.mean(dim=1, keepdim=True)
        r = (p * q).sum(1) / (p.norm(dim=1) * q.norm(dim=1) + eps)
        loss = loss + corr_weight * (1.0 - r).mean()
    return loss
