"""Timestep-aware fusion of the two cross-attention outputs of a DiT block.

Every block attends to the semantic tokens (#2a, output ``h_sem``) and to the rhythm tokens
(#2b, output ``h_rhy``), both ``[B, N, D]``; a fusion module combines them into one residual
update, depending on the diffusion time ``t`` in [0, 1] (``t = 1`` is pure noise):

=============  ===========================================================================
average        h = 0.5 h_sem + 0.5 h_rhy
FiLM           h = (gamma_sem(t) * h_sem + beta_sem(t)) + (gamma_rhy(t) * h_rhy + beta_rhy(t))
FiLM_choose    h = FiLM_sem(h_sem)  if t > threshold  else  FiLM_rhy(h_rhy)
gate           h = alpha(t) h_sem + (1 - alpha(t)) h_rhy,   alpha(t) in (0, 1)
choose         h = h_sem            if t > threshold  else  h_rhy
semantic       h = h_sem
=============  ===========================================================================

gamma(t) = sigmoid(MLP(e(t))), beta(t) = MLP(e(t)) with e(t) = W_t t + b_t (``t_linear``, a
``t_dim``-wide embedding of t), as in the published code.  The hard switches use
``torch.where`` on ``t`` so the graph has no data-dependent Python branches (ONNX export).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import FUSIONS


def _film_mlp(t_dim: int, hidden: int, dim: int, sigmoid: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(t_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def _col(t: torch.Tensor, batch: int) -> torch.Tensor:
    """``t`` as ``[B, 1]`` (accepts a scalar or ``[B]``)."""
    return t.reshape(-1, 1).expand(batch, 1).to(torch.float32)


class Fusion(nn.Module):
    """Base class: ``forward(h_sem [B,N,D], h_rhy [B,N,D], t [B]) -> [B,N,D]``."""

    name = "base"

    def forward(self, h_sem: torch.Tensor, h_rhy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class AverageFusion(Fusion):
    name = "average"

    def forward(self, h_sem, h_rhy, t):
        return 0.5 * h_sem + 0.5 * h_rhy


class SemanticFusion(Fusion):
    """Semantic branch only (the rhythm cross-attention output is ignored)."""
    name = "semantic"

    def forward(self, h_sem, h_rhy, t):
        return h_sem


class ChooseFusion(Fusion):
    """Hard switch: semantic while ``t > threshold`` (early, noisy steps), rhythm after."""
    name = "choose"

    def __init__(self, threshold: float = 0.2):
        super().__init__()
        self.threshold = float(threshold)

    def forward(self, h_sem, h_rhy, t):
        early = (_col(t, h_sem.shape[0]) > self.threshold)[:, :, None]   # [B, 1, 1]
        return torch.where(early, h_sem, h_rhy)


class FiLMFusion(Fusion):
    """FiLM each branch with (gamma_i(t), beta_i(t)) and sum; ``choose=True`` switches instead.

    Parameters (names as in the published checkpoint): ``t_linear`` (1 -> t_dim),
    ``FiLM_gamma_sem/rhy`` (t_dim -> hidden -> dim, sigmoid), ``FiLM_beta_sem/rhy``.
    """

    def __init__(self, dim: int, t_dim: int = 64, hidden: int = 256, choose: bool = False,
                 threshold: float = 0.2):
        super().__init__()
        self.choose = choose
        self.threshold = float(threshold)
        self.name = "FiLM_choose" if choose else "FiLM"
        self.t_linear = nn.Linear(1, t_dim)
        self.FiLM_gamma_sem = _film_mlp(t_dim, hidden, dim, sigmoid=True)
        self.FiLM_gamma_rhy = _film_mlp(t_dim, hidden, dim, sigmoid=True)
        self.FiLM_beta_sem = _film_mlp(t_dim, hidden, dim, sigmoid=False)
        self.FiLM_beta_rhy = _film_mlp(t_dim, hidden, dim, sigmoid=False)

    def modulations(self, t: torch.Tensor, batch: int):
        """``(gamma_sem, beta_sem, gamma_rhy, beta_rhy)``, each ``[B, 1, D]``."""
        e = self.t_linear(_col(t, batch))                                 # [B, t_dim]
        return tuple(m(e)[:, None, :] for m in (self.FiLM_gamma_sem, self.FiLM_beta_sem,
                                                self.FiLM_gamma_rhy, self.FiLM_beta_rhy))

    def forward(self, h_sem, h_rhy, t):
        g_s, b_s, g_r, b_r = self.modulations(t, h_sem.shape[0])
        f_sem = g_s * h_sem + b_s
        f_rhy = g_r * h_rhy + b_r
        if not self.choose:
            return f_sem + f_rhy
        early = (_col(t, h_sem.shape[0]) > self.threshold)[:, :, None]
        return torch.where(early, f_sem, f_rhy)


class GateFusion(Fusion):
    """alpha(t) = sigmoid(MLP(t)) in (0, 1): h = alpha h_sem + (1 - alpha) h_rhy (smooth in t)."""
    name = "gate"

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 1),
                                  nn.Sigmoid())

    def alpha(self, t: torch.Tensor, batch: int) -> torch.Tensor:
        """``[B, 1, 1]`` weight of the semantic branch."""
        return self.gate(_col(t, batch))[:, :, None]

    def forward(self, h_sem, h_rhy, t):
        a = self.alpha(t, h_sem.shape[0])
        return a * h_sem + (1.0 - a) * h_rhy


def make_fusion(name: str, dim: int, t_dim: int = 64, *, hidden: int = 256,
                threshold: float = 0.2) -> Fusion:
    """Build the fusion called ``name`` (one of :data:`diffv2m.config.FUSIONS`)."""
    if name == "average":
        return AverageFusion()
    if name == "semantic":
        return SemanticFusion()
    if name == "choose":
        return ChooseFusion(threshold)
    if name in ("FiLM", "FiLM_choose"):
        return FiLMFusion(dim, t_dim, hidden, choose=(name == "FiLM_choose"), threshold=threshold)
    if name == "gate":
        return GateFusion(t_dim)
    raise ValueError(f"unknown fusion {name!r}; choose one of {', '.join(FUSIONS)}")
