"""Waveform VAE in the family of Stable Audio Open's Oobleck autoencoder.

Encoder::

    audio [B, ch, N] -> conv7(ch -> C m0)
      -> for each stride s_i:  3 residual units (dilations 1, 3, 9) at C m_i
                               -> Snake -> strided conv (kernel 2 s_i) to C m_{i+1}
      -> Snake -> conv3 -> [B, 2 D, N / hop]  (mean, raw scale)

Decoder mirrors it::

    z [B, D, L] -> conv7(D -> C m_last)
      -> for each stride in reverse:  Snake -> transposed conv (kernel 2 s_i, stride s_i)
                                      -> 3 residual units (dilations 1, 3, 9)
      -> Snake -> conv7 (no bias) -> audio [B, ch, L hop]

with ``m = (1,) + channel_mults``; a residual unit is ``x + conv1(Snake(conv7_dil(Snake(x))))``.

Bottleneck (KL): ``std = softplus(raw_scale) + 1e-4``, ``z = mean + std * noise``,
``kl = mean(sum_c(mean^2 + std^2 - log std^2 - 1)) / 2``.  :meth:`Autoencoder.encode`
returns ``(mean, logvar)`` with ``logvar = 2 log std``.

Snake (Ziyin et al.; SnakeBeta as in BigVGAN / Oobleck)::

    snake(x) = x + sin^2(alpha x) / beta,   alpha = exp(a), beta = exp(b) per channel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from ..config import AutoencoderConfig


class Snake(nn.Module):
    """snake(x) = x + sin^2(exp(a) x) / exp(b), with a, b learnable per channel ([C], log scale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(channels))
        self.log_beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T] -> [B, C, T]."""
        alpha = self.log_alpha.exp()[None, :, None]
        inv_beta = (-self.log_beta).exp()[None, :, None]
        s = torch.sin(alpha * x)
        return torch.addcmul(x, s, s * inv_beta)  # x + sin^2(alpha x) / beta, 4 passes


def _act(channels: int, use_snake: bool) -> nn.Module:
    return Snake(channels) if use_snake else nn.ELU()


def _wn(module: nn.Module, enabled: bool) -> nn.Module:
    return _weight_norm(module) if enabled else module


def _conv(cin: int, cout: int, k: int, *, wn: bool, stride: int = 1, dilation: int = 1,
          padding: int | None = None, bias: bool = True) -> nn.Module:
    if padding is None:
        padding = dilation * (k - 1) // 2
    return _wn(nn.Conv1d(cin, cout, k, stride=stride, dilation=dilation, padding=padding,
                         bias=bias), wn)


class ResidualUnit(nn.Module):
    """x + conv1(act(conv7_dilated(act(x)))); [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int, dilation: int, *, use_snake: bool, wn: bool):
        super().__init__()
        self.net = nn.Sequential(
            _act(channels, use_snake),
            _conv(channels, channels, 7, dilation=dilation, wn=wn),
            _act(channels, use_snake),
            _conv(channels, channels, 1, wn=wn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class EncoderBlock(nn.Sequential):
    """Residual units at ``cin``, then a strided conv: [B, cin, T] -> [B, cout, T / stride]."""

    def __init__(self, cin: int, cout: int, stride: int, *, use_snake: bool, wn: bool):
        super().__init__(
            *(ResidualUnit(cin, d, use_snake=use_snake, wn=wn) for d in (1, 3, 9)),
            _act(cin, use_snake),
            _conv(cin, cout, 2 * stride, stride=stride, padding=math.ceil(stride / 2), wn=wn),
        )


class DecoderBlock(nn.Sequential):
    """Transposed-conv upsampling, then residual units: [B, cin, T] -> [B, cout, T stride]."""

    def __init__(self, cin: int, cout: int, stride: int, *, use_snake: bool, wn: bool):
        # kernel 2s, padding ceil(s/2), output_padding s mod 2: output length exactly T s.
        up = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride,
                                padding=math.ceil(stride / 2), output_padding=stride % 2)
        super().__init__(
            _act(cin, use_snake),
            _wn(up, wn),
            *(ResidualUnit(cout, d, use_snake=use_snake, wn=wn) for d in (1, 3, 9)),
        )


def _widths(cfg: AutoencoderConfig) -> list[int]:
    mults = (1,) + tuple(cfg.channel_mults)
    if len(mults) != len(cfg.strides) + 1:
        raise ValueError(f"channel_mults ({len(cfg.channel_mults)}) and strides "
                         f"({len(cfg.strides)}) must have the same length")
    return [cfg.base_channels * m for m in mults]


class Encoder(nn.Sequential):
    """[B, audio_channels, N] -> [B, 2 latent_dim, N / hop] (N a multiple of hop)."""

    def __init__(self, cfg: AutoencoderConfig):
        w, wn, sn = _widths(cfg), cfg.weight_norm, cfg.use_snake
        super().__init__(
            _conv(cfg.audio_channels, w[0], 7, wn=wn),
            *(EncoderBlock(w[i], w[i + 1], s, use_snake=sn, wn=wn)
              for i, s in enumerate(cfg.strides)),
            _act(w[-1], sn),
            _conv(w[-1], 2 * cfg.latent_dim, 3, wn=wn),
        )


class Decoder(nn.Sequential):
    """[B, latent_dim, L] -> [B, audio_channels, L hop]."""

    def __init__(self, cfg: AutoencoderConfig):
        w, wn, sn = _widths(cfg), cfg.weight_norm, cfg.use_snake
        n = len(cfg.strides)
        layers = [_conv(cfg.latent_dim, w[-1], 7, wn=wn)]
        layers += [DecoderBlock(w[i + 1], w[i], cfg.strides[i], use_snake=sn, wn=wn)
                   for i in reversed(range(n))]
        # Oobleck's final activation sits at w[1] channels (its c_mults start with a 1).
        layers += [_act(w[0], sn), _conv(w[0], cfg.audio_channels, 7, wn=wn, bias=False)]
        if cfg.final_tanh:
            layers.append(nn.Tanh())
        super().__init__(*layers)


class Autoencoder(nn.Module):
    """Oobleck-style VAE: ``encode`` / ``encode_latent`` / ``decode`` / ``forward``.

    Shapes: audio [B, audio_channels, N]; latents [B, latent_dim, L] with L = ceil(N / hop);
    ``decode`` returns [B, audio_channels, L hop].
    """

    def __init__(self, cfg: AutoencoderConfig | None = None):
        super().__init__()
        self.cfg = cfg or AutoencoderConfig()
        self.hop = self.cfg.hop
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def pad(self, audio: torch.Tensor) -> torch.Tensor:
        """Right-pad [B, ch, N] with zeros to a multiple of hop."""
        extra = (-audio.shape[-1]) % self.hop
        return F.pad(audio, (0, extra)) if extra else audio

    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, ch, N] -> (mean, logvar), each [B, latent_dim, ceil(N / hop)]."""
        h = self.encoder(self.pad(audio))
        mean, raw_scale = h.chunk(2, dim=1)
        std = F.softplus(raw_scale) + 1e-4
        return mean, 2.0 * torch.log(std)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + exp(logvar / 2) noise."""
        noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                            dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * noise

    @staticmethod
    def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, var) || N(0, 1)) summed over channels, averaged over batch and time."""
        return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).sum(1).mean()

    def encode_latent(self, audio: torch.Tensor, deterministic: bool = True,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """audio [B, ch, N] -> z [B, latent_dim, ceil(N / hop)] (the mean when deterministic)."""
        mean, logvar = self.encode(audio)
        return mean if deterministic else self.sample(mean, logvar, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, latent_dim, L] -> audio [B, audio_channels, L hop]."""
        return self.decoder(z)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (recon [B, ch, N padded to hop], kl scalar) with a sampled z."""
        mean, logvar = self.encode(audio)
        return self.decode(self.sample(mean, logvar)), self.kl(mean, logvar)

    def remove_weight_norm(self) -> "Autoencoder":
        """Fold weight-norm parametrizations into plain weights (faster inference, export)."""
        for m in self.modules():
            if parametrize.is_parametrized(m, "weight"):
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        return self


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
