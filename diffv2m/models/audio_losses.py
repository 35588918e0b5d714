"""Training losses for the waveform autoencoder.

- :class:`MultiResolutionSTFTLoss`: per FFT size, spectral convergence
  ``||S - S'||_F / ||S||_F`` plus log-magnitude L1 ``mean |log S - log S'|``, averaged.
- :class:`MelLoss`: L1 between log mel spectrograms; the filterbank comes from
  ``librosa.filters.mel`` once and is kept as a buffer (torchaudio is not needed).
- :func:`kl_loss`: KL(N(mean, var) || N(0, 1)) of the bottleneck.
- :class:`STFTDiscriminator` (optional, off by default): a small multi-scale discriminator on
  complex STFTs with hinge losses (:func:`hinge_d_loss`, :func:`hinge_g_loss`) and feature
  matching (:func:`feature_matching_loss`).
- :class:`AutoencoderLoss`: the weighted sum used by the AE training loop.

All spectral losses take audio ``[B, channels, N]`` and treat channels as extra batch rows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[B, ch, N] -> [B ch, N]."""
    return x.reshape(-1, x.shape[-1])


class STFTMagnitude(nn.Module):
    """|STFT| with a Hann window buffer: [B, ch, N] -> [B ch, n_fft/2 + 1, frames]."""

    def __init__(self, n_fft: int, hop: int | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop or n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def complex(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(_rows(x), self.n_fft, self.hop, window=self.window, center=True,
                          return_complex=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.complex(x)
        return torch.sqrt(spec.real ** 2 + spec.imag ** 2 + EPS)


class MultiResolutionSTFTLoss(nn.Module):
    """mean over n_fft of [ ||S - S'||_F / ||S||_F + mean |log S - log S'| ] (S of target)."""

    def __init__(self, fft_sizes=(2048, 1024, 512, 256, 128)):
        super().__init__()
        self.stfts = nn.ModuleList(STFTMagnitude(n) for n in fft_sizes)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        total = est.new_zeros(())
        for stft in self.stfts:
            s_est, s_ref = stft(est), stft(ref)
            sc = torch.linalg.norm(s_ref - s_est) / torch.linalg.norm(s_ref).clamp_min(EPS)
            log_mag = (torch.log(s_ref) - torch.log(s_est)).abs().mean()
            total = total + sc + log_mag
        return total / len(self.stfts)


class MelLoss(nn.Module):
    """mean |log(M |S| + eps) - log(M |S'| + eps)| with M a librosa mel filterbank buffer."""

    def __init__(self, sample_rate: int, n_fft: int = 2048, hop: int = 512, n_mels: int = 80):
        super().__init__()
        import librosa
        self.stft = STFTMagnitude(n_fft, hop)
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ch, N] -> [B ch, n_mels, frames]."""
        return torch.log(torch.matmul(self.mel, self.stft(x)) + 1e-5)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return (self.log_mel(est) - self.log_mel(ref)).abs().mean()


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """0.5 sum_c(mean^2 + var - logvar - 1), averaged over batch and time."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).sum(1).mean()


# ---------------------------------------------------------------- adversarial (optional)

class _ScaleDiscriminator(nn.Module):
    """2-D conv stack on (real, imag) STFT planes: returns (logits, feature maps)."""

    def __init__(self, n_fft: int, audio_channels: int, width: int):
        super().__init__()
        self.stft = STFTMagnitude(n_fft)
        self.audio_channels = audio_channels
        cin = 2 * audio_channels
        chans = [width, width, width, width]
        layers, c = [], cin
        for i, w in enumerate(chans):
            stride = (1, 1) if i == 0 else (2, 1)
            dilation = (1, 2 ** max(i - 1, 0))
            layers.append(nn.Conv2d(c, w, (3, 9) if i else (3, 7), stride=stride,
                                    dilation=dilation,
                                    padding=(1, dilation[1] * (4 if i else 3))))
            c = w
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(c, 1, (3, 3), padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = self.stft.complex(x)                                  # [B ch, F, T]
        spec = spec.reshape(x.shape[0], self.audio_channels, *spec.shape[-2:])
        h = torch.cat([spec.real, spec.imag], dim=1)                 # [B, 2 ch, F, T]
        feats = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class STFTDiscriminator(nn.Module):
    """Multi-scale STFT discriminator; forward(audio) -> list of (logits, features) per scale."""

    def __init__(self, audio_channels: int = 1, fft_sizes=(2048, 1024, 512), width: int = 32):
        super().__init__()
        self.scales = nn.ModuleList(_ScaleDiscriminator(n, audio_channels, width)
                                    for n in fft_sizes)

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.scales]


def hinge_d_loss(real_out, fake_out) -> torch.Tensor:
    """Discriminator: mean relu(1 - D(real)) + mean relu(1 + D(fake)), summed over scales."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
               for (r, _), (f, _) in zip(real_out, fake_out))


def hinge_g_loss(fake_out) -> torch.Tensor:
    """Generator: -mean D(fake), summed over scales."""
    return sum(-f.mean() for f, _ in fake_out)


def feature_matching_loss(real_out, fake_out) -> torch.Tensor:
    """mean over layers of |f_real - f_fake| / mean |f_real|, summed over scales."""
    total = 0.0
    for (_, fr), (_, ff) in zip(real_out, fake_out):
        total = total + sum((a.detach() - b).abs().mean() / (a.detach().abs().mean() + EPS)
                            for a, b in zip(fr, ff)) / len(fr)
    return total


class AutoencoderLoss(nn.Module):
    """Weighted reconstruction loss: w_stft MR-STFT + w_mel mel + w_kl KL (+ adversarial).

    ``forward(recon, audio, mean, logvar) -> dict`` with each term and ``"total"``.  With
    ``adversarial=True`` a :class:`STFTDiscriminator` is created as ``self.discriminator``;
    the generator terms (hinge + feature matching) are added to the total and
    :meth:`discriminator_loss` gives the discriminator's own loss.
    """

    def __init__(self, sample_rate: int, audio_channels: int = 1, *, stft_weight: float = 1.0,
                 mel_weight: float = 1.0, kl_weight: float = 1e-4, adversarial: bool = False,
                 adv_weight: float = 0.1, fm_weight: float = 5.0,
                 fft_sizes=(2048, 1024, 512, 256, 128)):
        super().__init__()
        self.mrstft = MultiResolutionSTFTLoss(fft_sizes)
        self.mel = MelLoss(sample_rate)
        self.w = {"mrstft": stft_weight, "mel": mel_weight, "kl": kl_weight,
                  "adv": adv_weight, "fm": fm_weight}
        self.discriminator = STFTDiscriminator(audio_channels) if adversarial else None

    def forward(self, recon: torch.Tensor, audio: torch.Tensor, mean: torch.Tensor,
                logvar: torch.Tensor) -> dict[str, torch.Tensor]:
        n = audio.shape[-1]
        recon = recon[..., :n]
        terms = {"mrstft": self.mrstft(recon, audio), "mel": self.mel(recon, audio),
                 "kl": kl_loss(mean, logvar)}
        if self.discriminator is not None:
            fake, real = self.discriminator(recon), self.discriminator(audio)
            terms["adv"] = hinge_g_loss(fake)
            terms["fm"] = feature_matching_loss(real, fake)
        terms["total"] = sum(self.w[k] * v for k, v in terms.items())
        return terms

    def discriminator_loss(self, recon: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        n = audio.shape[-1]
        return hinge_d_loss(self.discriminator(audio), self.discriminator(recon[..., :n].detach()))
