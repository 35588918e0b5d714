"""``diffv2m train mood``: fit the picture's mood reader (:mod:`diffv2m.features.mood`).

A logistic regression (scikit-learn's, L2-regularised) from each training clip's colour and
style class to its music's mode (the manifest's ``mode``, labelled by the corpus's key
finder); the validation split is read back and its accuracy printed and stored in the file's
metadata.  Seconds on a CPU: the clips' features come from the one feature cache (extracted
on demand like the prior's).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..features.mood import INPUTS, MoodReader, mood_inputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..config import add_config_option
    p.add_argument("manifest", help="corpus manifest.jsonl (features extracted on demand)")
    p.add_argument("--out", required=True,
                   help="the reader's file; put it beside the model as mood_reader.safetensors "
                        "so the exporter and the torch backend find it")
    add_config_option(p, "score", "model config whose feature settings to use")
    p.add_argument("--features", type=Path, default=None,
                   help="feature cache folder (default: MANIFEST's folder/features)")
    p.add_argument("--l2", type=float, default=1.0,
                   help="L2 penalty on the standardised inputs' weights (default 1)")


def _split(clips: list[dict], split: str, cache: Path, cfg) -> tuple[np.ndarray, np.ndarray]:
    from ..data.clip_features import clip_features
    rows, labels = [], []
    for c in clips:
        if c.get("split") != split or c.get("mode") not in ("major", "minor"):
            continue
        _, feats, _ = clip_features(c, cache, image_size=cfg.semantic.image_size,
                                    sample_rate=cfg.analysis_rate)
        rows.append(mood_inputs(feats.colour, int(c.get("cls", 1))))
        labels.append(c["mode"] == "major")
    return np.array(rows, np.float64).reshape(-1, INPUTS), np.array(labels, bool)


def fit_mood_reader(x: np.ndarray, major: np.ndarray, *, l2: float = 1.0,
                    meta: dict | None = None) -> MoodReader:
    """Standardise ``x [N, 31]`` and fit p(major); both modes must occur."""
    from sklearn.linear_model import LogisticRegression
    if len(set(major.tolist())) < 2:
        raise UserError("the mood reader needs training clips in both modes")
    if l2 <= 0:
        raise UserError(f"--l2 must be > 0 (got {l2})")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    lr = LogisticRegression(C=1.0 / l2, max_iter=1000).fit((x - mean) / std, major)
    return MoodReader(mean=mean, std=std, weight=lr.coef_[0].astype(np.float64),
                      bias=float(lr.intercept_[0]), meta=dict(meta or {}))


def accuracy(reader: MoodReader, x: np.ndarray, major: np.ndarray) -> float:
    """Share of rows of ``x`` read as their mode (major where p(major) >= 0.5, as
    :meth:`MoodReader.mode`)."""
    return float(np.mean((reader.logit(x) >= 0) == major)) if len(x) else float("nan")


def train_mood(args) -> Path:
    from ..config import resolve_config
    from ..data.manifest import read_manifest
    manifest = Path(args.manifest)
    cfg = resolve_config(args.config)
    clips = read_manifest(manifest, strict=False)
    cache = args.features or manifest.parent / "features"
    x, y = _split(clips, "train", cache, cfg)
    if not len(x):
        raise UserError(f"{manifest}: no training clips with a 'mode' (major/minor)")
    xv, yv = _split(clips, "val", cache, cfg)
    reader = fit_mood_reader(x, y, l2=args.l2)
    figures = {"train_clips": int(len(x)), "train_accuracy": round(accuracy(reader, x, y), 4),
               "val_clips": int(len(xv)), "val_accuracy": round(accuracy(reader, xv, yv), 4),
               "train_major_share": round(float(y.mean()), 4), "l2": args.l2,
               "manifest": manifest.name}
    reader = MoodReader(reader.mean, reader.std, reader.weight, reader.bias, meta=figures)
    out = reader.save(args.out)
    print(f"mood reader: train {figures['train_accuracy']:.3f} ({len(x)} clips), "
          f"val {figures['val_accuracy']:.3f} ({len(xv)} clips)")
    return out
