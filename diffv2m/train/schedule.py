"""The learning-rate schedule every trainer uses: linear warm-up, then a cosine decay to a
tenth of the base rate at the last step."""
from __future__ import annotations

import math


def warmup_cosine(base_lr: float, step: int, steps: int, warmup: int = 100) -> float:
    """Learning rate at ``step`` (0-based) of ``steps``: ``base_lr`` ramped up over ``warmup``
    steps, times a cosine from 1 down to 0.1."""
    return base_lr * min(1.0, (step + 1) / warmup) * (
        0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)


def set_lr(optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the rate ``lr``."""
    for g in optimizer.param_groups:
        g["lr"] = lr
