"""The score autoencoder: a multi-track piano roll <-> a small continuous latent (torch).

Input: ``roll [B, 4, 3, P, F]`` (tracks x onset/frame/velocity x pitches x frames at 24 frames/s,
:mod:`diffv2m.score.roll`), cropped to the config's pitch range.  The tracks, channels and
pitches of a frame are one feature vector (1D convolutions over time):

    encoder  roll -> conv3 -> GELU -> conv4/stride hop -> GELU -> conv3 -> GELU -> conv1 -> (mean, logvar)
    decoder  z    -> conv3 -> GELU -> convT4/stride hop -> GELU -> conv3 -> GELU -> conv1 -> logits

(``hop`` 2: 12 latent frames/s).  :meth:`ScoreAutoencoder.decode` returns note probabilities in
the roll layout: sigmoid of the onset, frame and velocity logits; the decoding rule of
:func:`diffv2m.score.roll.roll_to_notes` turns them into notes.  The training loss
(:func:`score_loss`) is binary cross-entropy on onsets (positives weighted, they are rare) and
frames, squared error on velocities at the true onsets, plus a small KL term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ScoreAutoencoderConfig
from ..score.events import TRACKS
from ..score.roll import CHANNELS


class ScoreAutoencoder(nn.Module):
    def __init__(self, cfg: ScoreAutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.hop
        d_in = len(TRACKS) * CHANNELS * cfg.pitches
        H, D = cfg.hidden, cfg.latent_dim
        k = 2 * cfg.hop                                  # stride-hop conv, kernel 2 hop
        pad = cfg.hop // 2
        self.encoder = nn.Sequential(
            nn.Conv1d(d_in, H, 3, padding=1), nn.GELU(),
            nn.Conv1d(H, H, k, stride=cfg.hop, padding=pad), nn.GELU(),
            nn.Conv1d(H, H, 3, padding=1), nn.GELU(),
            nn.Conv1d(H, 2 * D, 1))
        self.decoder = nn.Sequential(
            nn.Conv1d(D, H, 3, padding=1), nn.GELU(),
            nn.ConvTranspose1d(H, H, k, stride=cfg.hop, padding=pad), nn.GELU(),
            nn.Conv1d(H, H, 3, padding=1), nn.GELU(),
            nn.Conv1d(H, d_in, 1))
        with torch.no_grad():                            # notes are rare: start near "off"
            bias = self.decoder[-1].bias.view(len(TRACKS), CHANNELS, cfg.pitches)
            bias[:, 0].fill_(-4.0)
            bias[:, 1].fill_(-3.0)
            bias[:, 2].zero_()

    def _flat(self, roll: torch.Tensor) -> torch.Tensor:
        B, F_ = roll.shape[0], roll.shape[-1]
        x = roll.reshape(B, -1, F_)
        extra = (-F_) % self.hop
        return F.pad(x, (0, extra)) if extra else x

    def encode(self, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``roll [B, 4, 3, P, F]`` -> ``(mean, logvar)`` each ``[B, D, ceil(F / hop)]``."""
        h = self.encoder(self._flat(roll))
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode_latent(self, roll: torch.Tensor) -> torch.Tensor:
        return self.encode(roll)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, L]`` -> logits ``[B, 4, 3, P, L * hop]``."""
        y = self.decoder(z)
        return y.reshape(y.shape[0], len(TRACKS), CHANNELS, self.cfg.pitches, y.shape[-1])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Note probabilities ``[B, 4, 3, P, L * hop]`` in [0, 1] (the roll layout)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_latent(roll))


def crop_pitches(roll, cfg: ScoreAutoencoderConfig):
    """A full-range ``[..., 128, F]`` roll (numpy or torch) cut to the model's pitch range."""
    return roll[..., cfg.pitch_low:cfg.pitch_low + cfg.pitches, :]


def score_loss(logits: torch.Tensor, target: torch.Tensor, mean: torch.Tensor,
               logvar: torch.Tensor, *, kl_weight: float = 1e-4,
               onset_pos_weight: float = 8.0) -> dict[str, torch.Tensor]:
    """Loss terms of one batch; ``target`` in the roll layout (velocity in [0, 1])."""
    on_t, fr_t, vel_t = target[:, :, 0], target[:, :, 1], target[:, :, 2]
    on_l, fr_l, vel_l = logits[:, :, 0], logits[:, :, 1], logits[:, :, 2]
    pw = torch.tensor(onset_pos_weight, device=logits.device)
    onset = F.binary_cross_entropy_with_logits(on_l, on_t, pos_weight=pw)
    frame = F.binary_cross_entropy_with_logits(fr_l, fr_t, pos_weight=pw / 2)
    mask = on_t > 0.5
    velocity = (((torch.sigmoid(vel_l) - vel_t) ** 2) * mask).sum() / mask.sum().clamp(min=1)
    kl = 0.5 * torch.mean(mean ** 2 + logvar.exp() - 1.0 - logvar)
    total = onset + frame + velocity + kl_weight * kl
    return {"total": total, "onset": onset, "frame": frame, "velocity": velocity, "kl": kl}
