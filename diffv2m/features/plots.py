"""PNG plots of features for people: the rhythm curve against the cuts, and a feature overview.

matplotlib is imported only inside these functions, and figures are drawn on an Agg canvas
directly (no pyplot, no global backend switch), so plotting works headless and never
disturbs a Qt application that uses matplotlib itself.  Files are written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..atomic import atomic_path


def _figure(rows: int, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, height), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=(path.suffix.lstrip(".") or "png"))
    return path


def plot_rhythm(odf: np.ndarray, cut_times: Iterable[float], path: str | os.PathLike, *,
                beat_times: Iterable[float] | None = None, title: str = "rhythm") -> Path:
    """Bar chart of the per-second ODF with scene cuts (and optional beats) as lines."""
    odf = np.asarray(odf, np.float32).reshape(-1)
    fig, (ax,) = _figure(1, 3.0)
    ax.bar(np.arange(len(odf)) + 0.5, odf, width=0.9, color="tab:blue", label="ODF / s")
    for i, t in enumerate(cut_times):
        ax.axvline(float(t), color="tab:red", lw=1.2, label="cut" if i == 0 else None)
    for i, t in enumerate(beat_times or ()):
        ax.axvline(float(t), color="tab:green", lw=0.6, ls=":", label="beat" if i == 0 else None)
    ax.set_xlim(0, max(len(odf), 1))
    ax.set_xlabel("seconds")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_features(features: Any, path: str | os.PathLike, *, title: str = "video features") -> Path:
    """Overview of a VideoFeatures: frames strip, colour histograms, motion curve and cuts."""
    T = int(features.seconds)
    fig, axes = _figure(3, 7.0)
    frames = np.asarray(features.frames_1fps)
    if len(frames):
        strip = np.concatenate(list(frames[: min(T, 30)]), axis=1)
        axes[0].imshow(strip, aspect="auto", extent=(0, min(T, 30), 0, 1))
    axes[0].set_yticks([])
    axes[0].set_title(f"{title}: frame at each second's centre")
    axes[1].imshow(np.asarray(features.colour).T ** 0.5, aspect="auto", origin="lower",
                   extent=(0, T, 0, np.asarray(features.colour).shape[1]), cmap="magma")
    axes[1].set_ylabel("colour bin")
    times, values = features.motion_curve
    axes[2].plot(times, values / max(float(np.max(values)) if len(values) else 1.0, 1e-9),
                 color="0.6", lw=0.8, label="motion energy")
    axes[2].step(np.arange(T + 1), np.append(features.motion, features.motion[-1:] if T else []),
                 where="post", color="tab:blue", label="pseudo beat / s")
    for i, t in enumerate(features.cut_times):
        axes[2].axvline(float(t), color="tab:red", lw=1.2, label="cut" if i == 0 else None)
    axes[2].set_xlim(0, T)
    axes[2].set_xlabel("seconds")
    axes[2].legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)
