"""Musical rhythm features of audio: the paper's low-resolution onset curve and its variants.

Follows the published Diff-V2M code (DESIGN.md, "Ground-truth rhythm"):

* ``odf_lowres``: mono mix -> librosa onset strength (hop 512 at the given rate; the paper
  works at 44.1 kHz, the small model at 24 kHz) -> z-normalise -> ``scipy.signal.find_peaks``
  with prominence 0.05 -> the largest peak value in each second (0 where a second has no
  peak).  ``odf_normalise`` maps that to [0, 1] per clip for use as a model target/input.
* ``tempogram_lowres``: onset strength at hop 128, tempogram with a 384-frame window,
  averaged over each second, then the 384 lags averaged in 16 equal groups -> ``[T, 16]``.
* ``mel_lowres``: log-mel (128 bands, n_fft 2048, hop 512) averaged over each second, then
  the 128 bands averaged in 16 equal groups -> ``[T, 16]``.

The per-second reductions to 16 values are this project's choice (the paper only says
16 values per second).  Audio may be ``[N]`` or ``[C, N]``; channels are averaged.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import find_peaks

ODF_HOP = 512
PEAK_PROMINENCE = 0.05
TEMPO_HOP = 128
TEMPO_WIN = 384
MEL_BANDS = 128
MEL_FFT = 2048
MEL_HOP = 512
LOWRES_BINS = 16


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``[N]`` or ``[C, N]`` -> ``[N]`` float32 (mean of channels)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"expected audio [N] or [C, N], got shape {a.shape}")
    return np.ascontiguousarray(a)


def n_seconds(audio: np.ndarray, sr: int) -> int:
    """``ceil(duration)`` of the audio, the number of per-second rows."""
    return int(math.ceil(to_mono(audio).shape[0] / float(sr) - 1e-9))


def onset_strength(audio: np.ndarray, sr: int, *, hop: int = ODF_HOP) -> np.ndarray:
    """librosa onset strength envelope ``[F]`` (frame ``i`` at ``i * hop / sr`` seconds)."""
    import librosa
    return librosa.onset.onset_strength(y=to_mono(audio), sr=sr, hop_length=hop).astype(np.float32)


def odf_lowres(audio: np.ndarray, sr: int, seconds: int | None = None, *,
               hop: int = ODF_HOP, prominence: float = PEAK_PROMINENCE) -> np.ndarray:
    """The paper's low-resolution ODF: ``[T]`` float32, max z-scored onset peak per second."""
    T = n_seconds(audio, sr) if seconds is None else int(seconds)
    out = np.zeros(T, np.float32)
    env = onset_strength(audio, sr, hop=hop).astype(np.float64)
    if T == 0 or len(env) == 0:
        return out
    std = env.std()
    z = (env - env.mean()) / std if std > 0 else np.zeros_like(env)
    peaks, _ = find_peaks(z, prominence=prominence)
    if len(peaks) == 0:
        return out
    sec = np.floor(peaks * hop / float(sr)).astype(np.int64)
    ok = sec < T
    acc = np.full(T, -np.inf)
    np.maximum.at(acc, sec[ok], z[peaks[ok]])
    return np.where(np.isfinite(acc), acc, 0.0).astype(np.float32)


def odf_normalise(odf: np.ndarray) -> np.ndarray:
    """Per-clip scaling of a low-res ODF to [0, 1] (negative peaks count as no onset)."""
    x = np.clip(np.asarray(odf, np.float64), 0.0, None)
    top = x.max() if x.size else 0.0
    return (x / top if top > 0 else x).astype(np.float32)


def _per_second_mean(frames_x: np.ndarray, hop: int, sr: int, seconds: int) -> np.ndarray:
    """Average columns of ``[D, F]`` (frame i at i*hop/sr s) into ``[seconds, D]``; 0 if empty."""
    d, f = frames_x.shape
    sec = np.floor(np.arange(f) * hop / float(sr)).astype(np.int64)
    ok = sec < seconds
    sums = np.zeros((seconds, d))
    np.add.at(sums, sec[ok], frames_x[:, ok].T)
    n = np.bincount(sec[ok], minlength=seconds)[:seconds]
    return sums / np.maximum(n, 1)[:, None]


def _group_mean(x: np.ndarray, groups: int) -> np.ndarray:
    """``[T, D]`` -> ``[T, groups]`` averaging contiguous, (nearly) equal groups of columns."""
    edges = np.linspace(0, x.shape[1], groups + 1).round().astype(int)
    return np.stack([x[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)


def tempogram_lowres(audio: np.ndarray, sr: int, seconds: int | None = None, *,
                     bins: int = LOWRES_BINS) -> np.ndarray:
    """``[T, 16]`` float32: autocorrelation tempogram (hop 128, window 384) per second."""
    import librosa
    T = n_seconds(audio, sr) if seconds is None else int(seconds)
    env = onset_strength(audio, sr, hop=TEMPO_HOP)
    tg = librosa.feature.tempogram(onset_envelope=env, sr=sr, hop_length=TEMPO_HOP,
                                   win_length=TEMPO_WIN)
    return _group_mean(_per_second_mean(tg, TEMPO_HOP, sr, T), bins).astype(np.float32)


def mel_lowres(audio: np.ndarray, sr: int, seconds: int | None = None, *,
               bins: int = LOWRES_BINS) -> np.ndarray:
    """``[T, 16]`` float32: log-mel (128 bands, n_fft 2048, hop 512) per second, bands grouped."""
    import librosa
    T = n_seconds(audio, sr) if seconds is None else int(seconds)
    mel = librosa.feature.melspectrogram(y=to_mono(audio), sr=sr, n_fft=MEL_FFT,
                                         hop_length=MEL_HOP, n_mels=MEL_BANDS)
    logmel = librosa.power_to_db(mel, ref=1.0)
    return _group_mean(_per_second_mean(logmel, MEL_HOP, sr, T), bins).astype(np.float32)


def beat_times(audio: np.ndarray, sr: int, *, hop: int = 256) -> np.ndarray:
    """Beat positions in seconds (``librosa.beat.beat_track``)."""
    import librosa
    y = to_mono(audio)
    if len(y) == 0:
        return np.zeros(0, np.float64)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, hop_length=hop, units="time")
    return np.asarray(beats, np.float64)


def onset_times(audio: np.ndarray, sr: int, *, hop: int = 256) -> np.ndarray:
    """Onset positions in seconds (``librosa.onset.onset_detect``, backtracking off)."""
    import librosa
    y = to_mono(audio)
    if len(y) == 0:
        return np.zeros(0, np.float64)
    return np.asarray(librosa.onset.onset_detect(y=y, sr=sr, hop_length=hop, units="time"),
                      np.float64)


def plot_rhythm(odf: np.ndarray, cut_times, path, **kw):
    """Alias of :func:`diffv2m.features.plots.plot_rhythm` (matplotlib imported lazily)."""
    from .plots import plot_rhythm as _plot
    return _plot(odf, cut_times, path, **kw)
