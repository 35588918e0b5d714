"""Conditioners: raw per-second features and scalars -> DiT context tokens and global condition.

Streams (T = seconds in the window, C = ``dit.cond_token_dim``):

* semantic ``[B, T, d_sem]`` -> ``c_sem = W_s S + b``                        ``[B, T, C]``
* rhythm   ``[B, T, 1]``     -> ``c_rhy = W_2 silu(W_1 R + b_1) + b_2``        ``[B, T, C]``
  (published: 1 -> 512 -> 768)
* colour   ``[B, T, 3072]``  -> ``c_col = W_2 silu(W_1 E + b_1) + b_2``        ``[B, T, C]``
* class ``[B]`` int -> ``Emb(class)`` ``[B, C]``; seconds_start / seconds_total ``[B]`` ->
  number embedding (learned Fourier features of ``s / max_seconds`` -> linear) ``[B, C]``;
  global condition ``g = [e_class, e_start, e_total]`` ``[B, 3C] = [B, global_cond_dim]``.

Context tokens carry no positional encoding in the published model (``context_pos_emb =
"none"``); the project's own models add a learned or sinusoidal per-second embedding
``P[k]`` to token k of every stream, so the DiT can align the rhythm in time.  With
``seconds_tokens`` the two seconds embeddings are appended as two extra tokens to the semantic
and rhythm contexts (published: 30 + 2 tokens).

Module names follow the published state dict (``conditioners.semantic.proj_out2``,
``conditioners.rhythm.proj_out1/2``, ``conditioners.color.proj_out1/2``,
``conditioners.cls.int_embedder`` (published ``class``: a Python keyword breaks torch.export /
FX code generation), ``conditioners.seconds_*.embedder.embedding.{0,1}``);
the published base-class ``proj_out`` tensors, never used in its forward, are not created.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """``[n, dim]`` table: ``sin(k w_i), cos(k w_i)`` with ``w_i = 10000^(-2i/dim)``."""
    half = dim // 2
    k = torch.arange(n, dtype=torch.float32)[:, None]
    w = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1))
    tab = torch.zeros(n, dim)
    tab[:, 0:2 * half:2] = torch.sin(k * w)
    tab[:, 1:2 * half:2] = torch.cos(k * w)
    return tab


class LearnedFourierFeatures(nn.Module):
    """``x [B] -> [B, 2*half + 1] = [x, sin(2 pi w x), cos(2 pi w x)]`` with learned ``w``."""

    def __init__(self, half_dim: int = 128):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(half_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1)
        f = 2.0 * math.pi * x * self.weights[None, :]
        return torch.cat([x, torch.sin(f), torch.cos(f)], dim=-1)


class NumberEmbedder(nn.Module):
    """``embedding = Sequential(LearnedFourierFeatures(half), Linear(2 half + 1, dim))``."""

    def __init__(self, dim: int, half_dim: int = 128):
        super().__init__()
        self.embedding = nn.Sequential(LearnedFourierFeatures(half_dim),
                                       nn.Linear(2 * half_dim + 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


class NumberConditioner(nn.Module):
    """A scalar in ``[min_val, max_val]`` (seconds) -> ``[B, dim]``; normalised and clamped."""

    def __init__(self, dim: int, min_val: float = 0.0, max_val: float = 30.0):
        super().__init__()
        self.min_val, self.max_val = float(min_val), float(max_val)
        self.embedder = NumberEmbedder(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32).reshape(-1)
        x = ((x - self.min_val) / (self.max_val - self.min_val)).clamp(0.0, 1.0)
        return self.embedder(x)


class ClassConditioner(nn.Module):
    """``cls [B] int -> [B, dim]``."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.int_embedder = nn.Embedding(num_classes, dim)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        return self.int_embedder(cls.reshape(-1).long())


class SemanticConditioner(nn.Module):
    """``[B, T, d_sem] -> [B, T, C]`` (one linear map, published ``proj_out2``)."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.proj_out2 = nn.Linear(in_dim, dim)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.proj_out2(s)


class MLPConditioner(nn.Module):
    """``[B, T, in] -> proj_out2(silu(proj_out1(x))) [B, T, C]`` (rhythm 1 -> H -> C; colour)."""

    def __init__(self, in_dim: int, hidden: int, dim: int):
        super().__init__()
        self.proj_out1 = nn.Linear(in_dim, hidden)
        self.act = nn.SiLU()
        self.proj_out2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_out2(self.act(self.proj_out1(x)))


class Conditioner(nn.Module):
    """All conditioners of the DiT (owned by :class:`diffv2m.models.dit.DiT` as ``conditioner``).

    ``forward(semantic [B,T,d_sem], rhythm [B,T,1] or [B,T], colour [B,T,d_col], cls [B],
    seconds_start [B], seconds_total [B]) -> (ctx_sem [B,T(+2),C], ctx_rhy [B,T(+2),C],
    ctx_col [B,T,C], global_cond [B, 3C])``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dit
        C = d.cond_token_dim
        if d.global_cond_dim != 3 * C:
            raise ValueError(f"global_cond_dim ({d.global_cond_dim}) must be 3 * cond_token_dim "
                             f"({3 * C}): class, seconds_start and seconds_total embeddings")
        self.max_seconds = d.max_seconds
        self.seconds_tokens = d.seconds_tokens
        self.pos_type = d.context_pos_emb
        self.conditioners = nn.ModuleDict({
            "semantic": SemanticConditioner(config.semantic_dim, C),
            "rhythm": MLPConditioner(1, d.rhythm_hidden, C),
            "color": MLPConditioner(config.colour_dim, d.colour_hidden, C),
            "cls": ClassConditioner(d.num_classes, C),   # published key "class"
            "seconds_start": NumberConditioner(C, 0.0, float(d.max_seconds)),
            "seconds_total": NumberConditioner(C, 0.0, float(d.max_seconds)),
        })
        if self.pos_type == "learned":
            self.context_pos = nn.Embedding(d.max_seconds, C)
            nn.init.normal_(self.context_pos.weight, std=0.02)
        elif self.pos_type == "sinusoidal":
            self.register_buffer("context_pos_table", sinusoidal_table(d.max_seconds, C),
                                 persistent=False)
        elif self.pos_type != "none":
            raise ValueError(f"unknown context_pos_emb {self.pos_type!r}")

    def positions(self, T: int) -> torch.Tensor | None:
        """``[1, T, C]`` per-second positional embedding (``None`` when disabled)."""
        if self.pos_type == "learned":
            return self.context_pos.weight[:T][None]
        if self.pos_type == "sinusoidal":
            return self.context_pos_table[:T][None]
        return None

    def forward(self, semantic, rhythm, colour, cls, seconds_start, seconds_total):
        c = self.conditioners
        if rhythm.dim() == 2:
            rhythm = rhythm[..., None]
        ctx_sem = c["semantic"](semantic)
        ctx_rhy = c["rhythm"](rhythm)
        ctx_col = c["color"](colour)
        pos = self.positions(semantic.shape[1])
        if pos is not None:
            ctx_sem = ctx_sem + pos
            ctx_rhy = ctx_rhy + pos[:, : ctx_rhy.shape[1]]
            ctx_col = ctx_col + pos[:, : ctx_col.shape[1]]
        e_cls = c["cls"](cls)
        e_start = c["seconds_start"](seconds_start)
        e_total = c["seconds_total"](seconds_total)
        if self.seconds_tokens:
            extra = torch.stack([e_start, e_total], dim=1)                   # [B, 2, C]
            ctx_sem = torch.cat([ctx_sem, extra], dim=1)
            ctx_rhy = torch.cat([ctx_rhy, extra], dim=1)
        global_cond = torch.cat([e_cls, e_start, e_total], dim=-1)          # [B, 3C]
        return ctx_sem, ctx_rhy, ctx_col, global_cond
