"""Per-clip audio embeddings for the distribution metrics, and a registry of embedding backends.

The paper's FAD uses VGGish, its FD/KL PANNs CNN14 and its density/coverage CLAP, all with
downloaded weights.  None can be fetched here, so the project ships one embedding that needs
no weights at all, and a registry so that a user who has weights on disk can plug the real
networks in (:func:`register_embedding`).  Numbers computed with the built-in embedding are
NOT comparable with the paper's.

``mel-chroma-onset-stats-v1`` (:class:`MelChromaOnsetStats`, 160 values)
    The clip is mixed to mono and resampled to 22,050 Hz.  With ``n_fft = 2048`` and
    ``hop = 512``:

    * ``[0:64]``   mean over time of the 64-band log-mel spectrogram (power, Slaney mel,
      0-11,025 Hz, ``10 log10(max(power, 1e-10))`` dB) divided by 10 (bels);
    * ``[64:128]`` standard deviation over time of the same, in bels;
    * ``[128:140]`` mean over time of the STFT chroma (12 pitch classes, C first; each frame
      scaled to max 1 by librosa, tuning fixed at A440);
    * ``[140:152]`` standard deviation over time of the chroma;
    * ``[152:160]`` rhythm and energy statistics: mean and standard deviation of the onset
      strength envelope, onsets per second (``librosa.onset.onset_detect``), tempo in BPM / 100
      (``librosa.feature.tempo``; 0 for silence), mean and standard deviation of frame RMS,
      mean spectral centroid in kHz and mean spectral flatness.

    Silence or an empty clip gives finite values (no NaN).  The ``v1`` in the name changes
    whenever any of this does, so stored embeddings are never mixed across definitions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..errors import UserError

DEFAULT_EMBEDDING = "mel-chroma-onset-stats-v1"


@runtime_checkable
class AudioEmbedding(Protocol):
    """``name``, ``dim`` and ``embed(audio [C, N] or [N], sr) -> [dim] float32``."""

    name: str
    dim: int

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray: ...


def _mono(audio) -> np.ndarray:
    """:func:`diffv2m.features.rhythm.to_mono` with NaN/inf made finite (an embedding of
    broken audio is still a number)."""
    from diffv2m.features.rhythm import to_mono
    return np.nan_to_num(to_mono(audio))


class MelChromaOnsetStats:
    """The built-in, weight-free embedding ``mel-chroma-onset-stats-v1`` (module docstring)."""

    name = DEFAULT_EMBEDDING
    dim = 160
    sr = 22050
    n_fft = 2048
    hop = 512
    n_mels = 64
    comparable_with_paper = False

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        import librosa

        y = _mono(audio)
        if int(sr) != self.sr and len(y):
            y = librosa.resample(y, orig_sr=int(sr), target_sr=self.sr).astype(np.float32)
        if len(y) < self.n_fft:
            y = np.pad(y, (0, self.n_fft - len(y)))
        spec = np.abs(librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop)) ** 2
        mel = librosa.feature.melspectrogram(S=spec, sr=self.sr, n_mels=self.n_mels)
        logmel = 10.0 * np.log10(np.maximum(mel, 1e-10)) / 10.0
        chroma = librosa.feature.chroma_stft(S=spec, sr=self.sr, tuning=0.0)
        env = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=self.sr)
        onsets = librosa.onset.onset_detect(onset_envelope=env, sr=self.sr, hop_length=self.hop)
        duration = len(y) / self.sr
        tempo = 0.0
        if np.any(env > 0):
            tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=env, sr=self.sr,
                                                              hop_length=self.hop))[0])
        rms = librosa.feature.rms(S=np.sqrt(spec), frame_length=self.n_fft)[0]
        centroid = librosa.feature.spectral_centroid(S=np.sqrt(spec), sr=self.sr)[0]
        flatness = librosa.feature.spectral_flatness(S=np.sqrt(spec))[0]
        stats = [env.mean(), env.std(), len(onsets) / max(duration, 1e-9), tempo / 100.0,
                 rms.mean(), rms.std(), centroid.mean() / 1000.0, flatness.mean()]
        out = np.concatenate([logmel.mean(axis=1), logmel.std(axis=1), chroma.mean(axis=1),
                              chroma.std(axis=1), np.asarray(stats, np.float64)])
        return np.nan_to_num(out).astype(np.float32)


# ----------------------------------------------------------------------------- registry
EmbeddingFactory = Callable[..., AudioEmbedding]
_REGISTRY: dict[str, EmbeddingFactory] = {DEFAULT_EMBEDDING: lambda weights=None: MelChromaOnsetStats()}
_NEEDS_WEIGHTS = {"vggish", "panns", "panns-cnn14", "clap"}


def register_embedding(name: str, factory: EmbeddingFactory) -> None:
    """Make ``factory(weights=PATH_OR_NONE) -> AudioEmbedding`` available as ``name``.

    The factory must load weights only from the local path it is given (never download).
    Registering an existing name replaces it.
    """
    if not name or not callable(factory):
        raise ValueError("register_embedding needs a name and a callable factory")
    _REGISTRY[name] = factory


def available_embeddings() -> list[str]:
    """Names that :func:`get_embedding` can build."""
    return sorted(_REGISTRY)


def get_embedding(name: str = DEFAULT_EMBEDDING, weights: str | os.PathLike | None = None
                  ) -> AudioEmbedding:
    """Build the embedding ``name``; ``weights`` is a local file handed to its factory."""
    if weights is not None:
        w = str(weights)
        if "://" in w:
            raise UserError(f"{w}: embedding weights must be a local file (no downloads)")
        if not Path(w).exists():
            raise UserError(f"{w}: no such weights file")
    if name not in _REGISTRY:
        hint = ""
        if name.lower() in _NEEDS_WEIGHTS:
            hint = (f"; {name} needs its network and a local weights file: register it with "
                    "diffv2m.evaluate.embeddings.register_embedding")
        raise UserError(f"embedding {name!r} is not available (have: "
                        f"{', '.join(available_embeddings())}){hint}")
    emb = _REGISTRY[name](weights=weights)
    if not isinstance(emb, AudioEmbedding):
        raise TypeError(f"factory for {name!r} returned {type(emb).__name__}, not an AudioEmbedding")
    return emb


def embed_many(embedding: AudioEmbedding, clips, sr: int) -> np.ndarray:
    """``[n, dim]`` float32 embeddings of a sequence of audio arrays at rate ``sr``."""
    rows = [np.asarray(embedding.embed(a, sr), np.float32).reshape(-1) for a in clips]
    for r in rows:
        if r.shape != (embedding.dim,):
            raise ValueError(f"{embedding.name}: embed returned {r.shape}, expected ({embedding.dim},)")
    return np.stack(rows) if rows else np.zeros((0, embedding.dim), np.float32)


CHROMA_MEAN = slice(128, 140)  # the 12-bin mean chroma inside mel-chroma-onset-stats-v1
