"""Autoencoder reconstruction metrics in plain numpy (torch-free).

Inputs are audio arrays ``[channels, samples]`` or ``[samples]``; the longer one is cut to
the shorter length.  Definitions:

- :func:`mrstft_distance`: mean over FFT sizes of spectral convergence
  ``||S - S'||_F / ||S||_F`` plus log-magnitude L1 ``mean |log(S + eps) - log(S' + eps)|``
  (Hann window, hop n_fft / 4).
- :func:`mel_distance`: L1 between log mel spectrograms (librosa's Slaney mel filterbank).
- :func:`si_sdr`: scale-invariant signal-to-distortion ratio in dB, averaged over channels.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FFT_SIZES = (2048, 1024, 512, 256, 128)
EPS = 1e-7


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.atleast_2d(np.asarray(ref, np.float64))
    est = np.atleast_2d(np.asarray(est, np.float64))
    if ref.shape[0] != est.shape[0]:
        raise ValueError(f"channel mismatch: ref {ref.shape}, est {est.shape}")
    n = min(ref.shape[-1], est.shape[-1])
    return ref[:, :n], est[:, :n]


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int | None = None) -> np.ndarray:
    """|STFT| of ``x [C, N]`` -> ``[C, n_fft // 2 + 1, frames]`` (centred, reflect padding)."""
    hop = hop or n_fft // 4
    x = np.atleast_2d(x)
    pad = n_fft // 2
    mode = "reflect" if x.shape[-1] > pad else "constant"
    xp = np.pad(x, ((0, 0), (pad, pad)), mode=mode)
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[:, ::hop]
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    return np.abs(np.fft.rfft(frames * window, axis=-1)).transpose(0, 2, 1)


def mrstft_distance(ref: np.ndarray, est: np.ndarray, fft_sizes=FFT_SIZES) -> float:
    """Multi-resolution STFT distance (spectral convergence + log magnitude); 0 for est = ref."""
    ref, est = _pair(ref, est)
    total = 0.0
    for n_fft in fft_sizes:
        s_ref, s_est = stft_magnitude(ref, n_fft), stft_magnitude(est, n_fft)
        sc = np.linalg.norm(s_ref - s_est) / max(np.linalg.norm(s_ref), EPS)
        log_mag = np.mean(np.abs(np.log(s_ref + EPS) - np.log(s_est + EPS)))
        total += sc + log_mag
    return float(total / len(fft_sizes))


@lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float64)


def mel_distance(ref: np.ndarray, est: np.ndarray, sr: int, *, n_fft: int = 2048,
                 hop: int = 512, n_mels: int = 128) -> float:
    """Mean |log mel(ref) - log mel(est)| (magnitude mel, natural log)."""
    ref, est = _pair(ref, est)
    mel = _mel_basis(int(sr), n_fft, n_mels)
    m_ref = mel @ stft_magnitude(ref, n_fft, hop)
    m_est = mel @ stft_magnitude(est, n_fft, hop)
    return float(np.mean(np.abs(np.log(m_ref + 1e-5) - np.log(m_est + 1e-5))))


def si_sdr(ref: np.ndarray, est: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant SDR in dB (zero-mean signals), averaged over channels.

    target = <est, ref> / ||ref||^2 ref;  noise = est - target;
    si_sdr = 10 log10(||target||^2 / ||noise||^2).
    """
    ref, est = _pair(ref, est)
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    scale = np.sum(est * ref, axis=-1, keepdims=True) / (np.sum(ref * ref, axis=-1,
                                                                keepdims=True) + eps)
    target = scale * ref
    noise = est - target
    ratio = (np.sum(target ** 2, axis=-1) + eps) / (np.sum(noise ** 2, axis=-1) + eps)
    return float(np.mean(10.0 * np.log10(ratio)))
