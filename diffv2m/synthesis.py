"""Video features + a network backend -> music.  The one generation algorithm, torch-free.

The torch pipeline (:mod:`diffv2m.pipeline`) and the ONNX Runtime / TensorRT runtime
(:mod:`diffv2m.runtime.ort`) are thin :class:`Backend` implementations around
:func:`synthesise`, so windowing, guidance, seeding and stitching exist exactly once.

Long selections are generated in overlapping windows of ``config.window_seconds``; each window
is told where it sits (``seconds_start``, ``seconds_total``) and the windows are joined by a
short equal-power crossfade centred on the strongest predicted onset inside the overlap, so the
seam falls on a beat where the music changes anyway.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from . import diffusion
from .config import ModelConfig
from .features.cue_track import cue_track
from .progress import Progress



class Backend(Protocol):
    """The four networks of Diff-V2M behind numpy arrays (see docs/INTERFACES.md)."""

    name: str
    config: ModelConfig

    def encode_semantic(self, frames: np.ndarray) -> np.ndarray: ...

    def predict_rhythm(self, semantic: np.ndarray, scene_cut: np.ndarray,
                       pseudo_beat: np.ndarray, cls: np.ndarray) -> np.ndarray: ...

    def denoise(self, x: np.ndarray, t: np.ndarray, semantic: np.ndarray, rhythm: np.ndarray,
                colour: np.ndarray, cls: np.ndarray, seconds_start: np.ndarray,
                seconds_total: np.ndarray, cues: np.ndarray | None = None) -> np.ndarray:
        """``cues [B, K, L]`` is passed only when the model has a cue track."""

    def decode(self, z: np.ndarray) -> np.ndarray: ...

    # Optional attributes (read with getattr; a backend without them is served as before):
    #   window_batch: int -- how many windows one ``denoise`` call may sample side by side
    #     (:func:`window_batch`; only where each row of a batch comes out as alone);
    #   conditions_identity: str | None -- what ``encode_semantic`` / ``predict_rhythm``
    #     results depend on besides their inputs; set, the feature cache keeps them
    #     (:func:`diffv2m.jobs.video_conditions`).


def window_batch(backend: Backend) -> int:
    """How many windows :func:`synthesise` samples in one ``denoise`` call on ``backend``:
    its ``window_batch`` attribute, 1 when it has none (a backend whose rows would depend on
    the batch they sit in, or whose graphs take a fixed batch, keeps 1)."""
    return max(1, int(getattr(backend, "window_batch", 1) or 1))


@dataclass
class Settings:
    """Everything besides the video that decides the music; recorded in every output."""
    seed: int = 0
    steps: int | None = None           # None: the model's own (ModelConfig.default_steps)
    cfg_scale: float | None = None     # None: the model's own (ModelConfig.default_cfg_scale)
    sampler: str = "dpmpp-2m"
    cls: int = 1
    # score family only: the instruments (None: from the mood), the render rate (None: the
    # model's default, 48 kHz) and the mode ("major"/"minor"; None: the picture's, read by
    # the model's mood reader, diffv2m.features.mood)
    ensemble: str | None = None
    sample_rate: int | None = None
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"seed": int(self.seed), "steps": None if self.steps is None else int(self.steps),
             "cfg_scale": None if self.cfg_scale is None else float(self.cfg_scale),
             "sampler": self.sampler, "cls": int(self.cls)}
        if self.ensemble is not None:
            d["ensemble"] = self.ensemble
        if self.mode is not None:
            d["mode"] = self.mode
        return d


@dataclass
class Conditions:
    """Per-second conditions for a whole selection (T rows), computed once per video.

    Re-generating with a new seed reuses these: only sampling and decoding run again.
    """
    duration: float
    semantic: np.ndarray      # [T, d_sem]
    colour: np.ndarray        # [T, 3072]
    scene_cut: np.ndarray     # [T]
    pseudo_beat: np.ndarray   # [T]
    odf: np.ndarray           # [T] predicted onset-detection function in [0, 1]
    cut_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    motion_times: np.ndarray = field(default_factory=lambda: np.zeros(0))   # frame-level
    motion_values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # motion energy

    @property
    def seconds(self) -> int:
        return int(self.semantic.shape[0])


@dataclass
class Take:
    audio: np.ndarray         # [channels, samples], float32
    sample_rate: int
    settings: Settings
    conditions: Conditions
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    score: Any = None         # score family: the notes (diffv2m.score.events.Score)
    stems: dict[str, np.ndarray] | None = None   # per track, when asked of a family with them

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate

    def metadata(self) -> dict[str, Any]:
        meta = {"generator": "diffv2m", "backend": self.backend, **self.settings.to_dict(),
                "duration": round(self.duration, 6)}
        if self.score is not None:
            meta["ensemble"] = self.score.ensemble.name
            meta["notes"] = len(self.score.notes)
            if self.score.tempo_bpm:
                meta["tempo_bpm"] = round(float(self.score.tempo_bpm), 4)
            if self.score.key:
                meta["key"] = self.score.key
            if self.score.mode_from:
                meta["mode_from"] = self.score.mode_from
            if self.score.mood_reader:
                meta["mood_reader"] = self.score.mood_reader
        return meta


def _notify(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def window_starts(seconds: int, window: int, overlap: int) -> list[int]:
    """Start second of each window covering ``[0, seconds)``; the last one ends at ``seconds``."""
    if seconds <= window:
        return [0]
    hop = max(1, window - overlap)
    starts = list(range(0, seconds - window, hop))
    starts.append(seconds - window)
    return starts


def _rows(a: np.ndarray, start: int, n: int) -> np.ndarray:
    """Rows ``start:start+n`` of a per-second array, zero-padded past its end."""
    out = np.zeros((n,) + a.shape[1:], dtype=np.float32)
    part = a[start:start + n]
    out[: len(part)] = part
    return out


def conditions_from_features(backend: Backend, features: Any, *, cls: int = 1,
                             progress: Progress | None = None) -> Conditions:
    """Semantic tokens and the predicted rhythm for a selection (``features``: VideoFeatures)."""
    cfg = backend.config
    _notify(progress, "semantic", 0, 1)
    semantic = np.asarray(backend.encode_semantic(features.frames_1fps), dtype=np.float32)
    _notify(progress, "semantic", 1, 1)
    seconds = semantic.shape[0]
    cut = np.asarray(features.scene_cut, dtype=np.float32)
    beat = np.asarray(features.motion, dtype=np.float32)
    W = min(cfg.window_seconds, cfg.rhythm.max_seconds)
    starts = window_starts(seconds, W, cfg.overlap_seconds)
    odf_sum = np.zeros(seconds, np.float64)
    odf_n = np.zeros(seconds, np.float64)
    for k, s in enumerate(starts):
        _notify(progress, "rhythm", k, len(starts))
        pred = backend.predict_rhythm(_rows(semantic, s, W)[None], _rows(cut, s, W)[None],
                                      _rows(beat, s, W)[None], np.array([cls], np.int64))
        n = min(W, seconds - s)
        odf_sum[s:s + n] += np.asarray(pred, np.float64)[0, :n]
        odf_n[s:s + n] += 1
    _notify(progress, "rhythm", len(starts), len(starts))
    odf = np.clip(odf_sum / np.maximum(odf_n, 1), 0.0, 1.0).astype(np.float32)
    return conditions_of(features, semantic, odf)


def conditions_of(features: Any, semantic: np.ndarray, odf: np.ndarray) -> Conditions:
    """The :class:`Conditions` of ``features`` (VideoFeatures) with the semantic tokens and
    the predicted ODF a backend made of them (by :func:`conditions_from_features`, now or
    earlier: the feature cache keeps them)."""
    m_times, m_values = getattr(features, "motion_curve", (np.zeros(0), np.zeros(0)))
    return Conditions(duration=float(features.duration),
                      semantic=np.asarray(semantic, np.float32),
                      colour=np.asarray(features.colour, dtype=np.float32),
                      scene_cut=np.asarray(features.scene_cut, dtype=np.float32),
                      pseudo_beat=np.asarray(features.motion, dtype=np.float32),
                      odf=np.asarray(odf, np.float32),
                      cut_times=np.asarray(getattr(features, "cut_times", np.zeros(0)), np.float64),
                      motion_times=np.asarray(m_times, np.float64),
                      motion_values=np.asarray(m_values, np.float32))


def _guided_model(backend: Backend, cond: dict[str, np.ndarray], cfg_scale: float):
    """``model(x, t) -> v`` with classifier-free guidance; cond and null share one batch.

    ``cond`` holds B windows' conditions (batch B); the call is one ``denoise`` of batch 2B,
    the B conditional rows first, then the B null ones (batch B when ``cfg_scale`` is 1)."""
    if cfg_scale == 1.0:
        def model(x: np.ndarray, t: float) -> np.ndarray:
            return backend.denoise(x, np.full((x.shape[0],), t, np.float32), **cond)
        return model
    null = {k: (np.zeros_like(v) if k in ("semantic", "rhythm", "colour", "cues") else v)
            for k, v in cond.items()}
    both = {k: np.concatenate([cond[k], null[k]], axis=0) for k in cond}

    def model(x: np.ndarray, t: float) -> np.ndarray:
        b = x.shape[0]
        v = backend.denoise(np.concatenate([x, x], axis=0), np.full((2 * b,), t, np.float32),
                            **both)
        return diffusion.cfg_combine(v[:b], v[b:], cfg_scale)
    return model


def crossfade_point(odf: np.ndarray, lo: float, hi: float, margin: float) -> float:
    """Seconds inside ``[lo + margin, hi - margin]`` at the strongest predicted onset.

    The ODF has one value per second; the seam is put at the start of the second whose ODF is
    largest (ties: the middle of the overlap).
    """
    a, b = lo + margin, hi - margin
    if b <= a:
        return 0.5 * (lo + hi)
    secs = [s for s in range(int(math.ceil(a)), int(math.floor(b)) + 1)]
    if not secs:
        return 0.5 * (lo + hi)
    vals = np.array([odf[s] if s < len(odf) else 0.0 for s in secs])
    if np.allclose(vals, vals[0]):
        return 0.5 * (lo + hi)
    return float(secs[int(np.argmax(vals))])


def stitch(pieces: list[tuple[int, np.ndarray]], odf: np.ndarray, sr: int, total: int,
           window: int, fade_s: float = 0.08) -> np.ndarray:
    """Join window audio ``(start_second, [C, N])`` into ``[C, total]`` samples.

    Consecutive windows overlap; each seam is an equal-power crossfade of ``fade_s`` centred
    on :func:`crossfade_point`.
    """
    channels = pieces[0][1].shape[0]
    out = np.zeros((channels, total), np.float32)
    fade = max(2, int(round(fade_s * sr)))
    seam_prev = 0
    for k, (start, audio) in enumerate(pieces):
        s0 = start * sr
        if k + 1 < len(pieces):
            nxt = pieces[k + 1][0]
            centre = crossfade_point(odf, nxt, start + window, fade_s)
            seam = int(round(centre * sr))
        else:
            seam = total
        lo, hi = max(seam_prev - fade // 2, s0), min(seam + fade // 2, total, s0 + audio.shape[1])
        seg = audio[:, lo - s0: hi - s0].astype(np.float32).copy()
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        if k > 0:
            n = min(fade, seg.shape[1])
            seg[:, :n] *= np.sin(0.5 * np.pi * ramp[:n])
        if k + 1 < len(pieces):
            n = min(fade, seg.shape[1])
            seg[:, seg.shape[1] - n:] *= np.cos(0.5 * np.pi * ramp[fade - n:])
        out[:, lo:hi] += seg
        seam_prev = seam
    return out


def synthesise(backend: Backend, conditions: Conditions, settings: Settings, *,
               progress: Progress | None = None, soundfont: str | None = None,
               stems: bool = False) -> Take:
    """Sample music for ``conditions`` with ``backend``; deterministic for a given seed.

    The decoded windows become the take in the model's family (:mod:`diffv2m.families`).
    Score family: the notes are rendered with FluidSynth (``soundfont``: the GM SoundFont,
    default the system's) and kept in ``Take.score``; ``stems``: the same render also gives
    one array per track (``Take.stems``)."""
    from .settings_limits import check_settings
    check_settings(settings)
    cfg = backend.config
    if settings.cfg_scale is None:           # the model's own guidance, recorded as a number
        settings = replace(settings, cfg_scale=float(cfg.default_cfg_scale))
    if settings.steps is None:               # the model's own step count, likewise
        settings = replace(settings, steps=int(cfg.default_steps))
    W = cfg.window_seconds
    L = cfg.latent_frames
    C = cfg.autoencoder.latent_dim
    seconds = max(conditions.seconds, 1)
    starts = window_starts(seconds, W, cfg.overlap_seconds)
    if settings.sampler not in diffusion.SAMPLERS:
        from .errors import UserError
        raise UserError(f"unknown sampler {settings.sampler!r}; choose one of "
                        f"{', '.join(diffusion.SAMPLERS)}")
    sample = diffusion.SAMPLERS[settings.sampler]
    ts = diffusion.timesteps(settings.steps)
    total_steps = settings.steps * len(starts)
    timings = {"sampling": 0.0, "decoding": 0.0}
    pieces = []
    group = window_batch(backend)
    for k0 in range(0, len(starts), group):
        # windows k0..k0+n-1 sampled side by side: the sampler's arithmetic is per element
        # with one step size for all, so each window's latent is the one it would get alone
        ks = range(k0, min(k0 + group, len(starts)))
        conds = [_window_conditions(cfg, conditions, settings, starts[k]) for k in ks]
        cond = {name: np.concatenate([c[name] for c in conds], axis=0) for name in conds[0]}
        model = _guided_model(backend, cond, settings.cfg_scale)
        x = np.concatenate([diffusion.initial_noise(settings.seed, (1, C, L), window=k)
                            for k in ks], axis=0)

        def callback(i: int, n: int, _k0: int = k0, _n: int = len(ks)) -> None:
            _notify(progress, "sampling", _k0 * settings.steps + (i + 1) * _n, total_steps)

        t0 = time.perf_counter()
        z = np.asarray(sample(model, x, ts, callback=callback), np.float32)
        timings["sampling"] += time.perf_counter() - t0
        for j, k in enumerate(ks):
            t1 = time.perf_counter()
            _notify(progress, "decoding audio", k, len(starts))
            audio = np.asarray(backend.decode(z[j:j + 1]), np.float32)[0]
            timings["decoding"] += time.perf_counter() - t1
            pieces.append((starts[k], audio))
    _notify(progress, "decoding audio", len(starts), len(starts))
    from .families import family_of
    return family_of(cfg).take(backend, conditions, settings, pieces, timings,
                               progress=progress, soundfont=soundfont, stems=stems)


def _window_conditions(cfg: ModelConfig, conditions: Conditions, settings: Settings,
                       start: int) -> dict[str, np.ndarray]:
    """The DiT's conditions (batch 1) for the window starting at second ``start``."""
    W, L = cfg.window_seconds, cfg.latent_frames
    cond = {
        "semantic": _rows(conditions.semantic, start, W)[None],
        "rhythm": _rows(conditions.odf, start, W)[None, :, None],
        "colour": _rows(conditions.colour, start, W)[None],
        "cls": np.array([settings.cls], np.int64),
        "seconds_start": np.array([start], np.float32),
        "seconds_total": np.array([conditions.duration], np.float32),
    }
    if cfg.dit.cue_channels:
        cond["cues"] = cue_track(conditions.cut_times, conditions.motion_times,
                                 conditions.motion_values, start=float(start), frames=L,
                                 rate=cfg.autoencoder.latent_rate)[None]
    return cond
