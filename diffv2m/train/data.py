"""Training data held in memory: audio for the autoencoder, cached features + latents for the prior.

The corpus is small enough (hours of 24 kHz mono, 64x64 frames at 1 fps) to keep in RAM; each
step draws its batch with the step's own generator (:func:`diffv2m.train.state.step_generator`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.manifest import read_manifest
from ..errors import UserError


def split_clips(clips: list[dict], split: str) -> list[dict]:
    chosen = [c for c in clips if c.get("split", "train") == split]
    if not chosen:
        raise UserError(f"the manifest has no clips in split {split!r}")
    return chosen


def load_audio_bank(clips: list[dict], sample_rate: int) -> list[np.ndarray]:
    """Every clip's music as int16 mono arrays (half the memory of float32)."""
    from .. import media
    bank = []
    for c in clips:
        a = media.read_audio(c["audio"], sample_rate, mono=True)[0]
        bank.append(np.round(np.clip(a, -1, 1) * 32767).astype(np.int16))
    return bank


def save_audio_pack(path: Path, bank: list[np.ndarray], sample_rate: int, ids: list[str]) -> Path:
    """A training audio bank in one compressed .npz (int16, concatenated, with offsets)."""
    from ..atomic import atomic_path
    offsets = np.cumsum([0] + [len(a) for a in bank]).astype(np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, audio=np.concatenate(bank) if bank else np.zeros(0, np.int16),
                                offsets=offsets, sample_rate=np.int64(sample_rate),
                                ids=np.array(ids, dtype=str))
    return path


def load_audio_pack(path: Path, sample_rate: int) -> list[np.ndarray]:
    """The bank written by :func:`save_audio_pack`; its sample rate must be the model's."""
    import zipfile
    try:
        with np.load(path, allow_pickle=False) as z:
            sr, audio, off = int(z["sample_rate"]), z["audio"], z["offsets"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not an audio pack ({exc})") from None
    if sr != sample_rate:
        raise UserError(f"{path}: audio at {sr} Hz, the model wants {sample_rate} Hz")
    return [audio[a:b] for a, b in zip(off[:-1], off[1:])]


def audio_batch(bank: list[np.ndarray], batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """``[batch, 1, length]`` random crops (float32) drawn with ``gen``."""
    idx = torch.randint(len(bank), (batch,), generator=gen).tolist()
    out = np.zeros((batch, 1, length), np.float32)
    for b, i in enumerate(idx):
        a = bank[i]
        start = int(torch.randint(max(1, len(a) - length + 1), (1,), generator=gen))
        seg = a[start:start + length]
        out[b, 0, : len(seg)] = seg / 32767.0
    return torch.from_numpy(out)


@dataclass
class PriorData:
    """Per-clip conditions and targets for the prior, stacked over clips (N) and seconds (T)."""
    frames: np.ndarray       # [N, T, S, S, 3] uint8
    colour: np.ndarray       # [N, T, 3072] float16
    scene_cut: np.ndarray    # [N, T]
    motion: np.ndarray       # [N, T]
    odf: np.ndarray          # [N, T] ground-truth ODF normalised to [0, 1]
    cls: np.ndarray          # [N] int64
    seconds_start: np.ndarray  # [N]
    seconds_total: np.ndarray  # [N]
    latents: np.ndarray | None = None  # [N, C, L] (raw autoencoder latents)
    ids: list[str] | None = None
    cues: np.ndarray | None = None     # [N, K, L] cue track at the latent rate (K = cue_channels)
    meta: dict | None = None           # what made it (pack files): autoencoder hash, manifest
    semantic: np.ndarray | None = None  # [N, T, d] tokens of a frozen semantic encoder (not saved)

    def __len__(self) -> int:
        return len(self.frames)

    _ARRAYS = ("frames", "colour", "scene_cut", "motion", "odf", "cls", "seconds_start",
               "seconds_total", "latents", "cues")

    def save(self, path: Path) -> Path:
        """One compressed .npz holding everything a prior run reads (temp file + rename)."""
        from ..atomic import atomic_path
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["ids"] = np.array(self.ids or [], dtype=str)
        arrays["meta"] = np.array(json.dumps(self.meta or {}, sort_keys=True))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> "PriorData":
        import zipfile
        try:
            with np.load(path, allow_pickle=False) as z:
                kw = {k: z[k] for k in cls._ARRAYS if k in z.files}
                return cls(**kw, ids=[str(i) for i in z["ids"]], meta=json.loads(str(z["meta"])))
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path}: not a prior data pack ({exc})") from None


def _fit_rows(a: np.ndarray, T: int) -> np.ndarray:
    out = np.zeros((T,) + a.shape[1:], a.dtype)
    out[: min(T, len(a))] = a[:T]
    return out


def load_prior_data(manifest: Path, split: str, *, seconds: int, image_size: int,
                    sample_rate: int, cache_dir: Path | None = None, cue_channels: int = 0,
                    latent_frames: int = 0, latent_rate: float = 0.0
                    ) -> tuple[PriorData, list[dict]]:
    """Features of a split's clips (extracted on the fly when missing from the cache); with
    ``cue_channels`` also each clip's cue track over its first ``latent_frames`` frames."""
    from ..data.clip_features import clip_features
    from ..features.cue_track import CUE_CHANNELS, cue_track
    from ..features.rhythm import odf_normalise
    if cue_channels not in (0, CUE_CHANNELS):
        raise UserError(f"cue_channels must be 0 or {CUE_CHANNELS}, not {cue_channels}")
    clips = split_clips(read_manifest(manifest, strict=False), split)
    cache_dir = cache_dir or manifest.parent / "features"
    rows = {k: [] for k in ("frames", "colour", "scene_cut", "motion", "odf", "cues")}
    for c in clips:
        _, feats, odf = clip_features(c, cache_dir, image_size=image_size, sample_rate=sample_rate)
        rows["frames"].append(_fit_rows(feats.frames_1fps, seconds))
        rows["colour"].append(_fit_rows(feats.colour.astype(np.float16), seconds))
        rows["scene_cut"].append(_fit_rows(feats.scene_cut.astype(np.float32), seconds))
        rows["motion"].append(_fit_rows(feats.motion.astype(np.float32), seconds))
        rows["odf"].append(_fit_rows(odf_normalise(odf).astype(np.float32), seconds))
        if cue_channels:
            rows["cues"].append(cue_track(feats.cut_times, *feats.motion_curve,
                                          start=0.0, frames=latent_frames, rate=latent_rate))
    data = PriorData(
        frames=np.stack(rows["frames"]), colour=np.stack(rows["colour"]),
        scene_cut=np.stack(rows["scene_cut"]), motion=np.stack(rows["motion"]),
        odf=np.stack(rows["odf"]),
        cls=np.array([int(c.get("cls", 1)) for c in clips], np.int64),
        seconds_start=np.array([float(c.get("start", c.get("offset", 0.0))) for c in clips], np.float32),
        seconds_total=np.array([float(c.get("piece_duration", float(c.get("start", 0.0)) + float(c.get("duration", seconds))))
                                for c in clips], np.float32),
        ids=[c["id"] for c in clips],
        cues=np.stack(rows["cues"]).astype(np.float32) if cue_channels else None)
    return data, clips


def save_json(path: Path, obj) -> None:
    from ..atomic import atomic_write_text
    atomic_write_text(path, json.dumps(obj, indent=1))
