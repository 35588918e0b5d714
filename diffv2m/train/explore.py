"""``diffv2m explore-latents``: a PNG of the autoencoder's latent space, coloured by clip mood.

Each clip's music (its audio, or its piano roll for a score-family autoencoder) is encoded; every latent frame is projected onto the first two principal
components of all frames (PCA by SVD), drawn as faint points, and each clip's mean as a large
marker, coloured by its mood (mode x energy class from the manifest).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the top-2 principal axes ``[2, D]`` and their explained-variance ratios."""
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s ** 2
    return mean, vt[:2], var[:2] / var.sum()


def mood_label(clip: dict) -> str:
    energy = {0: "calm", 1: "moderate", 2: "energetic"}.get(int(clip.get("cls", 1)), "?")
    return f"{clip.get('mode', '?')} / {energy}"


def main(argv: list[str]) -> int:
    import torch
    from .. import media
    from ..atomic import atomic_path
    from ..data.manifest import read_manifest
    from .prior import load_autoencoder

    p = argparse.ArgumentParser(prog="diffv2m explore-latents", description=__doc__)
    p.add_argument("manifest", type=Path)
    p.add_argument("--autoencoder", required=True, type=Path)
    p.add_argument("-o", "--output", type=Path, default=Path("latents.png"))
    p.add_argument("--max-clips", type=int, default=120)
    args = p.parse_args(argv)

    ae, config = load_autoencoder(args.autoencoder)
    clips = read_manifest(args.manifest, strict=False)[: args.max_clips]
    frames, means, labels = [], [], []
    if config.latent_family == "score":              # the clips' piano rolls
        from .score_autoencoder import clip_rolls
        inputs = [torch.from_numpy(r[None]) for r in clip_rolls(clips, config)]
    else:
        inputs = (torch.from_numpy(media.read_audio(c["audio"], config.sample_rate,
                                                    mono=True)[None]) for c in clips)
    with torch.no_grad():
        for c, x in zip(clips, inputs):
            z = ae.encode_latent(x)[0].numpy().T   # [L, C]
            frames.append(z)
            means.append(z.mean(0))
            labels.append(mood_label(c))
    allf = np.concatenate(frames)
    mu, axes, ratio = pca_2d(allf)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    moods = sorted(set(labels))
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    for z, lab in zip(frames, labels):
        pz = (z - mu) @ axes.T
        ax.scatter(pz[:, 0], pz[:, 1], s=2, alpha=0.15, color=cmap(moods.index(lab) % 10))
    for m, lab in zip(means, labels):
        pm = (m - mu) @ axes.T
        ax.scatter(pm[0], pm[1], s=40, edgecolor="k", linewidth=0.5,
                   color=cmap(moods.index(lab) % 10))
    for i, lab in enumerate(moods):
        ax.scatter([], [], color=cmap(i % 10), label=lab)
    ax.legend(title="mood (mode / energy)", fontsize=8)
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    ax.set_title(f"Autoencoder latent space: {len(clips)} clips, {len(allf)} frames")
    fig.tight_layout()
    with atomic_path(args.output) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    print(args.output)
    return 0
