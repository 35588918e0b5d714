"""Diffusion transformer over the audio latent with emotion, semantic and rhythm cross-attention.

Notation: x_t ``[B, C_lat, L]`` noisy latent, t ``[B]`` in [0, 1], E = ``embed_dim``,
contexts ``c_col, c_sem, c_rhy [B, N, C]`` from :mod:`.conditioning`.

    x  = x_t + Conv1x1_pre(x_t);   h = W_in x^T (+ W_cue q^T)           [B, L, E]
    e_t = MLP(Fourier(t)),  e_g = MLP(g)                                [B, E]
    prepend:  h = [e_g + e_t ; h]   (one token, removed at the output)
    adaLN:    (shift, scale, gate) x 2 per block from SiLU(e_g + e_t)
    block:    h = h + SA(LN(h))                                          (rotary positions)
              h = h + CA_0(LN(h), c_col)                                 (#1 emotion)
              u = LN(h);  h = h + Fuse(CA_1(u, c_sem), CA_2(u, c_rhy), t) (#2a, #2b)
              h = h + FF(LN(h))
    v  = y + Conv1x1_post(y),  y = (W_out h)^T                          [B, C_lat, L]

``q [B, K, L]`` is the optional cue track (:mod:`diffv2m.features.cue_track`: cuts and
motion at the latent frame rate, ``cue_channels`` K > 0; not in the paper), which tells each
latent frame whether the picture cuts or moves there; ``W_cue`` starts at zero.

``published_norms`` reproduces the released code's block, where the residual stream itself
is replaced by its norm: ``h = LN(h); h = h + CA_0(h, c_col); h = LN'(h); h = h +
Fuse(CA_1(h, c_sem), CA_2(h, c_rhy), t)``.  ``published_wiring`` feeds the rhythm tokens to
CA_0 in place of the colour tokens (the released wrapper does this; colour is then unused).

The conditioners are owned by the DiT (``dit.conditioner``), so ``DiT.forward`` takes raw
features.  Names follow the published state dict where that costs nothing
(``transformer.layers.N.{pre_norm,self_attn,cross_attend_norm,cross_attn0..2,color_norm,
ff_norm,ff}``, ``to_timestep_embed``, ``to_cond_embed``, ``to_global_embed``,
``preprocess_conv``); the fusion's parameters live under ``layers.N.fusion``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .conditioning import Conditioner
from .fusion import make_fusion


# ---------------------------------------------------------------- building blocks

class LayerNorm(nn.Module):
    """LayerNorm with a learned scale ``gamma`` and a fixed zero shift ``beta`` (buffer)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.shape = (dim,)
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.gamma, self.beta, self.eps)


class RotaryEmbedding(nn.Module):
    """Rotary positions on the first ``dim`` channels of each head.

    angle(n, i) = n * theta_i, theta_i = 10000^(-2i/dim); ``forward(n) -> (cos, sin) [n, dim]``.
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq",
                             1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))

    def forward(self, n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(n, device=self.inv_freq.device, dtype=torch.float32)
        ang = pos[:, None] * self.inv_freq[None, :]                     # [n, dim/2]
        ang = torch.cat([ang, ang], dim=-1)                               # [n, dim]
        return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, N, dh]`` on its first ``r = cos.shape[-1]`` channels."""
    r = cos.shape[-1]
    xr, xp = x[..., :r], x[..., r:]
    a, b = xr.chunk(2, dim=-1)
    rot = torch.cat([-b, a], dim=-1)
    return torch.cat([xr * cos + rot * sin, xp], dim=-1)


class Attention(nn.Module):
    """Multi-head attention, ``softmax(q k^T / sqrt(dh)) v`` via ``F.scaled_dot_product_attention``.

    Self-attention (``dim_context=None``): ``to_qkv``; cross-attention: ``to_q`` on x,
    ``to_kv`` on the context ``[B, M, dim_context]`` with ``dim_context / dh`` key/value heads,
    each shared by ``heads / kv_heads`` query heads.  No biases, like the published layers.
    """

    def __init__(self, dim: int, heads: int, dim_context: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dim_head = dim // heads
        self.cross = dim_context is not None
        if self.cross:
            # keys/values keep the context width: dim_context / dim_head heads, shared by
            # groups of query heads (as in the published layers: to_kv is C -> 2C)
            if dim_context % self.dim_head or heads % (dim_context // self.dim_head):
                raise ValueError(f"context width {dim_context} must be a multiple of the head "
                                 f"width {self.dim_head} dividing {heads} heads")
            self.kv_heads = dim_context // self.dim_head
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim_context, 2 * dim_context, bias=False)
        else:
            self.kv_heads = heads
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        return x.reshape(B, N, D // self.dim_head, self.dim_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``x [B, N, D]`` (+ ``context [B, M, Dc]``) -> ``[B, N, D]``."""
        if self.cross:
            q = self._split(self.to_q(x))
            k, v = (self._split(a) for a in self.to_kv(context).chunk(2, dim=-1))
            if self.kv_heads != self.heads:                  # [B, H_kv, M, dh] -> [B, H, M, dh]
                rep = self.heads // self.kv_heads
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        else:
            q, k, v = (self._split(a) for a in self.to_qkv(x).chunk(3, dim=-1))
            if rotary is not None:
                q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        out = F.scaled_dot_product_attention(q, k, v)
        B, H, N, dh = out.shape
        return self.to_out(out.transpose(1, 2).reshape(B, N, H * dh))


class GLU(nn.Module):
    """``proj(x) = [a, b]``, output ``a * silu(b)``."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * F.silu(b)


class FeedForward(nn.Module):
    """``W_2 (GLU(x)) + b_2`` with inner width ``mult * dim`` (published ``ff.ff.{0,2}``)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(GLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: ``h += SA(LN(h)); h += FF(LN(h))`` (rhythm predictor)."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 4):
        super().__init__()
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x, rotary=None):
        x = x + self.self_attn(self.pre_norm(x), rotary=rotary)
        return x + self.ff(self.ff_norm(x))


def rotary_dim(dim_head: int) -> int:
    """Rotated channels per head: ``max(dh / 2, 32)`` (published), at most ``dh``, even."""
    return min(max(dim_head // 2, 32), dim_head) // 2 * 2


class FourierFeatures(nn.Module):
    """``t [B] -> [cos(2 pi t W^T), sin(2 pi t W^T)] [B, out]``, ``W ~ N(0, std^2)`` (fixed init)."""

    def __init__(self, out_features: int, std: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, 1) * std)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = 2.0 * math.pi * t.reshape(-1, 1) @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


# ---------------------------------------------------------------- the DiT

class DiTBlock(nn.Module):
    """Self-attn -> cross-attn #1 (emotion) -> norm -> cross-attn #2a/#2b fused -> FF."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dit
        E, C = d.embed_dim, d.cond_token_dim
        self.published_norms = d.published_norms
        self.pre_norm = LayerNorm(E)
        self.self_attn = Attention(E, d.heads)
        self.cross_attend_norm = LayerNorm(E)
        self.cross_attn0 = Attention(E, d.heads, C)      # emotion / colour
        self.color_norm = LayerNorm(E)
        self.cross_attn1 = Attention(E, d.heads, C)      # semantic
        self.cross_attn2 = Attention(E, d.heads, C)      # rhythm
        self.fusion = make_fusion(d.fusion, E, d.fusion_t_dim, hidden=d.fusion_hidden,
                                  threshold=d.choose_threshold)
        self.ff_norm = LayerNorm(E)
        self.ff = FeedForward(E, d.ff_mult)
        self.ada_ln = None
        if d.global_cond_type == "adaLN":
            self.ada_ln = nn.Linear(E, 6 * E)
            nn.init.zeros_(self.ada_ln.weight)
            nn.init.zeros_(self.ada_ln.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c_col: torch.Tensor,
                c_sem: torch.Tensor, c_rhy: torch.Tensor, rotary=None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, E]``, ``t [B]``, contexts ``[B, M, C]``, ``cond`` = SiLU(e_g + e_t) ``[B, E]``
        (adaLN only) -> ``[B, N, E]``."""
        if self.ada_ln is not None:
            sh1, sc1, g1, sh2, sc2, g2 = self.ada_ln(cond)[:, None, :].chunk(6, dim=-1)
            h = self.pre_norm(x) * (1 + sc1) + sh1
            x = x + g1 * self.self_attn(h, rotary=rotary)
        else:
            x = x + self.self_attn(self.pre_norm(x), rotary=rotary)

        if self.published_norms:
            x = self.cross_attend_norm(x)
            x = x + self.cross_attn0(x, c_col)
            x = self.color_norm(x)
            u = x
        else:
            x = x + self.cross_attn0(self.cross_attend_norm(x), c_col)
            u = self.color_norm(x)
        x = x + self.fusion(self.cross_attn1(u, c_sem), self.cross_attn2(u, c_rhy), t)

        if self.ada_ln is not None:
            h = self.ff_norm(x) * (1 + sc2) + sh2
            return x + g2 * self.ff(h)
        return x + self.ff(self.ff_norm(x))


class Transformer(nn.Module):
    """``project_in`` -> blocks -> ``project_out`` (published ``transformer.*`` layout)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dit
        E, C_lat = d.embed_dim, config.autoencoder.latent_dim
        self.project_in = nn.Linear(C_lat, E, bias=False)
        self.project_out = nn.Linear(E, C_lat, bias=False)
        self.layers = nn.ModuleList([DiTBlock(config) for _ in range(d.depth)])
        self.rotary_pos_emb = RotaryEmbedding(rotary_dim(E // d.heads)) if d.rotary else None
        self.embed_dim = E


class DiT(nn.Module):
    """``forward(x [B,C,L], t [B], semantic [B,T,d_sem], rhythm [B,T,1], colour [B,T,d_col],
    cls [B] int64, seconds_start [B], seconds_total [B], cues [B,K,L] | None) -> v [B,C,L]``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dit
        if d.global_cond_type not in ("adaLN", "prepend"):
            raise ValueError(f"unknown global_cond_type {d.global_cond_type!r}")
        E, C, G, C_lat = d.embed_dim, d.cond_token_dim, d.global_cond_dim, config.autoencoder.latent_dim
        self.global_cond_type = d.global_cond_type
        self.published_wiring = d.published_wiring
        self.cfg_dropout = d.cfg_dropout
        self.conditioner = Conditioner(config)
        self.timestep_features = FourierFeatures(d.timestep_features)
        self.to_timestep_embed = nn.Sequential(nn.Linear(d.timestep_features, E), nn.SiLU(),
                                               nn.Linear(E, E))
        self.to_cond_embed = nn.Sequential(nn.Linear(C, C, bias=False), nn.SiLU(),
                                           nn.Linear(C, C, bias=False))
        self.to_global_embed = nn.Sequential(nn.Linear(G, E, bias=False), nn.SiLU(),
                                             nn.Linear(E, E, bias=False))
        self.preprocess_conv = nn.Conv1d(C_lat, C_lat, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(C_lat, C_lat, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        nn.init.zeros_(self.postprocess_conv.weight)
        self.transformer = Transformer(config)
        self.cue_channels = d.cue_channels
        self.cue_embed = None
        if d.cue_channels:
            self.cue_embed = nn.Linear(d.cue_channels, E, bias=False)
            nn.init.zeros_(self.cue_embed.weight)
        if not d.rotary:
            self.register_buffer("latent_pos_inv_freq", torch.exp(
                -math.log(10000.0) * torch.arange(E // 2, dtype=torch.float32) / (E // 2)),
                persistent=False)

    # -------------------------------------------------------------- training helper
    def drop_conditions(self, semantic: torch.Tensor, rhythm: torch.Tensor, colour: torch.Tensor,
                        p: float | None = None, generator: torch.Generator | None = None):
        """Classifier-free-guidance dropout: zero each stream of each sample with prob ``p``
        (default ``cfg_dropout``); the null condition is the all-zero raw feature.
        Returns ``(semantic, rhythm, colour)``."""
        p = self.cfg_dropout if p is None else p
        B = semantic.shape[0]
        keep = (torch.rand(B, 3, generator=generator,
                           device=generator.device if generator is not None else "cpu") >= p)
        keep = keep.to(semantic.device, semantic.dtype)

        def mask(x, k):
            return x * k.reshape(B, *([1] * (x.dim() - 1))).to(x.dtype)
        return mask(semantic, keep[:, 0]), mask(rhythm, keep[:, 1]), mask(colour, keep[:, 2])

    # -------------------------------------------------------------- forward
    def _latent_positions(self, n: int) -> torch.Tensor:
        ang = torch.arange(n, dtype=torch.float32, device=self.latent_pos_inv_freq.device)[:, None] \
            * self.latent_pos_inv_freq[None, :]
        return torch.cat([ang.sin(), ang.cos()], dim=-1)[None]             # [1, n, E]

    def forward(self, x: torch.Tensor, t: torch.Tensor, semantic: torch.Tensor,
                rhythm: torch.Tensor, colour: torch.Tensor, cls: torch.Tensor,
                seconds_start: torch.Tensor, seconds_total: torch.Tensor,
                cues: torch.Tensor | None = None) -> torch.Tensor:
        B = x.shape[0]
        t = t.to(x.dtype).reshape(-1).expand(B)
        c_sem, c_rhy, c_col, g = self.conditioner(semantic, rhythm, colour, cls,
                                                  seconds_start, seconds_total)
        if self.published_wiring:
            c_col = c_rhy                      # the released wrapper's rhythm -> emotion quirk
        c_sem, c_rhy, c_col = (self.to_cond_embed(c) for c in (c_sem, c_rhy, c_col))
        e = self.to_global_embed(g) + self.to_timestep_embed(self.timestep_features(t))  # [B, E]

        x = x + self.preprocess_conv(x)
        h = self.transformer.project_in(x.transpose(1, 2))                  # [B, L, E]
        if self.cue_embed is not None and cues is not None:
            h = h + self.cue_embed(cues.transpose(1, 2).to(h.dtype))        # frame-aligned cues
        if self.transformer.rotary_pos_emb is None:
            h = h + self._latent_positions(h.shape[1]).to(h.dtype)
        cond = None
        if self.global_cond_type == "prepend":
            h = torch.cat([e[:, None, :], h], dim=1)                        # [B, 1 + L, E]
        else:
            cond = F.silu(e)
        rot = None
        if self.transformer.rotary_pos_emb is not None:
            rot = self.transformer.rotary_pos_emb(h.shape[1])
            rot = (rot[0].to(h.dtype), rot[1].to(h.dtype))
        for layer in self.transformer.layers:
            h = layer(h, t, c_col, c_sem, c_rhy, rotary=rot, cond=cond)
        h = self.transformer.project_out(h)
        if self.global_cond_type == "prepend":
            h = h[:, 1:, :]                                                 # drop the cond token
        y = h.transpose(1, 2)
        return y + self.postprocess_conv(y)
