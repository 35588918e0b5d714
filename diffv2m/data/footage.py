"""Procedural footage for the corpus, cut and graded the way editors cut to music.

Why: the model must learn that cuts and motion line up with beats and onsets, and that the
colour grade goes with the mood.  Each shot is a different procedural scene (moving
gradients, drifting blobs, particles, plasma textures, zooming rings, rotating checkers),
evaluated as numpy arrays over all of the shot's frames at once (fast, no per-pixel loops).
Consecutive shots get distant hues and alternate dark/light bases, so every cut is a clear
change of picture; strong note onsets add a short flash and scale pulse inside a shot.

Colour grade (:func:`grade_params`): minor and calm -> dark, cool, desaturated; major and
energetic -> bright, warm, saturated (continuous in ``energy``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCENES = ("gradient", "blobs", "particles", "plasma", "rings", "checker")


@dataclass
class Shot:
    start: int          # first frame
    end: int            # one past the last frame
    scene: str
    hue: float          # 0..1
    light: bool         # light or dark base
    seed: int


# ----------------------------------------------------------------------------- editing
def plan_shots(beat_times: np.ndarray, downbeat_times: np.ndarray, n_frames: int, fps: float,
               rng: np.random.Generator, *, min_shot_s: float = 0.5) -> tuple[list[Shot], int]:
    """Shots cut on beats: every 1, 2 or 4 beats (chosen per clip), with some variety.

    Returns the shots and the chosen beats-per-shot.  Shots never last less than
    ``min_shot_s`` (so a 150 BPM clip does not cut on every beat) or one frame.
    """
    beats = np.asarray(beat_times, np.float64)
    period = float(np.median(np.diff(beats))) if len(beats) > 1 else 0.5
    choices = [n for n in (1, 2, 4) if n * period >= min_shot_s] or [4]
    base = int(rng.choice(choices))
    cut_frames: list[int] = []
    i = 0
    while True:
        step = base
        r = rng.random()
        if r < 0.2 and 2 * base <= 8:
            step = 2 * base                     # hold a shot longer now and then
        elif r < 0.3 and base // 2 in choices:
            step = base // 2                    # or cut quicker
        i += step
        if i >= len(beats):
            break
        f = int(round(beats[i] * fps))
        if f >= n_frames:
            break
        if f > (cut_frames[-1] if cut_frames else 0):
            cut_frames.append(f)
    bounds = [0] + cut_frames + [n_frames]
    shots: list[Shot] = []
    hue = float(rng.random())
    light = bool(rng.random() < 0.5)
    prev_scene = None
    for a, b in zip(bounds[:-1], bounds[1:]):
        scene = str(rng.choice([s for s in SCENES if s != prev_scene]))
        shots.append(Shot(a, b, scene, hue, light, int(rng.integers(2**31))))
        prev_scene = scene
        hue = (hue + 0.3 + 0.4 * float(rng.random())) % 1.0   # distant hue for the next shot
        light = not light
    return shots, base


# ----------------------------------------------------------------------------- colour
def hsv_to_rgb(h, s, v) -> np.ndarray:
    """Scalar or array HSV in [0,1] -> ``[..., 3]`` RGB in [0,1]."""
    h, s, v = (np.asarray(x, np.float32) for x in (h, s, v))
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def grade_params(mode: str, energy: float) -> dict:
    """Grade from mood: saturation, brightness gain, gamma and warmth (-1 cool .. +1 warm)."""
    e = float(np.clip(energy, 0.0, 1.0))
    major = 1.0 if mode == "major" else 0.0
    mood = 0.5 * major + 0.5 * e                             # 0 minor/calm .. 1 major/energetic
    return {"saturation": round(0.35 + 0.95 * mood, 4),
            "gain": round(0.7 + 0.4 * mood, 4),
            "gamma": round(1.25 - 0.4 * mood, 4),
            "warmth": round(2.0 * mood - 1.0, 4)}


def apply_grade(rgb: np.ndarray, g: dict) -> np.ndarray:
    """Apply :func:`grade_params` to ``[..., 3]`` float RGB in [0,1] (in place where possible)."""
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    rgb = lum[..., None] + g["saturation"] * (rgb - lum[..., None])
    w = g["warmth"]
    rgb *= np.array([1 + 0.18 * w, 1.0, 1 - 0.18 * w], np.float32) * g["gain"]
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb ** g["gamma"]


# ----------------------------------------------------------------------------- scenes
def _field(scene: str, X: np.ndarray, Y: np.ndarray, t: np.ndarray, rng) -> np.ndarray:
    """A scalar field in [0,1], ``[N,H,W]``, for coordinates ``X, Y`` ``[N,H,W]`` at times ``t``."""
    T = t[:, None, None]
    if scene == "gradient":
        th = rng.uniform(0, 2 * np.pi)
        k, w = rng.uniform(1.5, 4.0), rng.uniform(1.0, 3.0) * rng.choice([-1, 1])
        return 0.5 + 0.5 * np.sin(k * (X * np.cos(th) + Y * np.sin(th)) + w * T)
    if scene == "blobs" or scene == "particles":
        n = 5 if scene == "blobs" else 40
        r = rng.uniform(0.25, 0.5, n) if scene == "blobs" else rng.uniform(0.03, 0.07, n)
        p0 = rng.uniform(-1.6, 1.6, (n, 2))
        v = rng.normal(0, 0.5 if scene == "blobs" else 0.9, (n, 2))
        out = np.zeros(X.shape, np.float32)
        for j in range(n):
            cx = (p0[j, 0] + v[j, 0] * T + 2.0) % 4.0 - 2.0
            cy = (p0[j, 1] + v[j, 1] * T + 1.2) % 2.4 - 1.2
            d2 = (X - cx) ** 2 + (Y - cy) ** 2
            out = np.maximum(out, np.exp(-d2 / (2 * r[j] ** 2)))
        return out
    if scene == "plasma":
        out = np.zeros(X.shape, np.float32)
        for _ in range(4):
            fx, fy = rng.normal(0, 3.0, 2)
            w, ph = rng.uniform(-3, 3), rng.uniform(0, 2 * np.pi)
            out += np.sin(fx * X + fy * Y + w * T + ph)
        return 0.5 + 0.125 * out
    if scene == "rings":
        r = np.sqrt(X ** 2 + Y ** 2) + 1e-3
        k, w = rng.uniform(3, 6), rng.uniform(2, 5) * rng.choice([-1, 1])
        return 0.5 + 0.5 * np.sin(k * np.log(r) * 2 - w * T)
    if scene == "checker":
        a = rng.uniform(-0.8, 0.8) * T
        k = rng.uniform(3, 7)
        u = X * np.cos(a) - Y * np.sin(a)
        v = X * np.sin(a) + Y * np.cos(a)
        return 0.5 + 0.5 * np.tanh(3 * np.sin(k * u) * np.sin(k * v))
    raise ValueError(f"unknown scene {scene!r}")


def render_shot(shot: Shot, t: np.ndarray, zoom: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[N,H,W,3]`` float32 RGB in [0,1] for one shot at frame times ``t`` with scale ``zoom``."""
    rng = np.random.default_rng(shot.seed)
    aspect = width / height
    xs = np.linspace(-aspect, aspect, width, dtype=np.float32)
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    z = zoom.astype(np.float32)[:, None, None]
    X = xs[None, None, :] / z
    Y = ys[None, :, None] / z
    X, Y = np.broadcast_arrays(X, Y)
    f = _field(shot.scene, X, Y, t.astype(np.float32), rng).astype(np.float32)
    v_bg, v_fg = (0.95, 0.6) if shot.light else (0.08, 0.4)
    c1 = hsv_to_rgb(shot.hue, 0.75, v_bg)
    c2 = hsv_to_rgb((shot.hue + rng.uniform(0.08, 0.2)) % 1.0, 0.85, v_fg)
    return c1 + f[..., None] * (c2 - c1)


def accent_envelope(accent_times: np.ndarray, n_frames: int, fps: float,
                    decay_frames: float = 2.0) -> np.ndarray:
    """Per-frame accent strength in [0,1]: 1 on the frame of each accent, decaying after."""
    env = np.zeros(n_frames, np.float32)
    k = np.arange(n_frames, dtype=np.float32)
    for a in np.asarray(accent_times, np.float64):
        f0 = int(round(a * fps))
        if 0 <= f0 < n_frames:
            d = k - f0
            env = np.maximum(env, np.where(d >= 0, np.exp(-np.maximum(d, 0) / decay_frames), 0.0))
    return env


def render_footage(shots: list[Shot], n_frames: int, fps: float, width: int, height: int,
                   grade: dict, accents: np.ndarray, *, flash: float = 0.15,
                   pulse: float = 0.03) -> np.ndarray:
    """All frames ``[N,H,W,3]`` uint8: shots, accents (flash + scale pulse), then the grade."""
    env = accent_envelope(accents, n_frames, fps)
    out = np.empty((n_frames, height, width, 3), np.uint8)
    for s in shots:
        t = np.arange(s.start, s.end, dtype=np.float64) / fps
        e = env[s.start:s.end]
        rgb = render_shot(s, t, 1.0 + pulse * e, width, height)
        rgb = rgb * (1.0 + flash * e)[:, None, None, None]
        rgb = apply_grade(np.clip(rgb, 0.0, 1.0).astype(np.float32), grade)
        out[s.start:s.end] = np.round(rgb * 255.0).astype(np.uint8)
    return out


def pick_accents(onset_times: np.ndarray, counts: np.ndarray, cut_times: np.ndarray,
                 fps: float, *, min_gap_s: float = 0.25) -> np.ndarray:
    """Strong onsets for motion accents: the fuller chords first, away from cuts, spaced apart."""
    on = np.asarray(onset_times, np.float64)
    c = np.asarray(counts)
    if len(on) == 0:
        return on
    strong = on[c >= max(2, int(np.percentile(c, 60)))] if c.max() > 1 else on
    cuts = np.concatenate([[0.0], np.asarray(cut_times, np.float64)])
    chosen: list[float] = []
    for t in strong:
        if np.min(np.abs(cuts - t)) < 3.0 / fps:
            continue
        if chosen and t - chosen[-1] < min_gap_s:
            continue
        chosen.append(float(t))
    return np.asarray(chosen, np.float64)
