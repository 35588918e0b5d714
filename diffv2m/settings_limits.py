"""The accepted range of every generation setting, checked before any work starts.

One home for the limits the command line, the panel and :func:`diffv2m.synthesis.synthesise`
share:

* seed: an integer ``0 .. MAX_SEED`` (2**31 - 1).  Every output records it (WAV comment JSON,
  OTIO metadata, which stores 64-bit integers, and the panel's spin box, which holds 32-bit
  signed ones), and the noise is drawn from ``SeedSequence([seed, window])``, so any seed in
  the range reproduces its take exactly.  ``score --takes K`` uses ``SEED .. SEED+K-1``, so the
  last one must be in range too.
* steps: ``1 .. MAX_STEPS`` (1000; the published sampler uses 250).
* cfg (guidance scale): a finite number in ``CFG_RANGE`` (0 .. 15; 0 is unconditional).
* takes: ``1 .. MAX_TAKES`` (16).
* sampler: one of :data:`diffv2m.diffusion.SAMPLERS`; style (class): 0, 1 or 2.
"""
from __future__ import annotations

import math
import operator

from .errors import UserError

MAX_SEED = 2**31 - 1
MAX_STEPS = 1000
CFG_RANGE = (0.0, 15.0)
MAX_TAKES = 16
STYLES = (0, 1, 2)


def _integer(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_seed(seed, option: str = "--seed") -> int:
    n = _integer(seed)
    if n is None or not 0 <= n <= MAX_SEED:
        raise UserError(f"{option} {seed}: must be an integer from 0 to {MAX_SEED}")
    return n


def check_settings(settings, *, takes: int = 1):
    """Raise a one-line UserError naming the first setting out of range; return ``settings``."""
    from .diffusion import SAMPLERS
    if _integer(takes) is None or not 1 <= takes <= MAX_TAKES:
        raise UserError(f"--takes {takes}: must be an integer from 1 to {MAX_TAKES}")
    check_seed(settings.seed)
    if takes > 1:
        check_seed(settings.seed + takes - 1, option=f"--seed {settings.seed} with --takes")
    steps = settings.steps                   # None: the model's own
    if steps is not None and (_integer(steps) is None or not 1 <= steps <= MAX_STEPS):
        raise UserError(f"--steps {steps}: must be an integer from 1 to {MAX_STEPS}")
    lo, hi = CFG_RANGE
    cfg = settings.cfg_scale
    try:                                     # None: the model's own
        cfg_ok = cfg is None or (math.isfinite(float(cfg)) and lo <= float(cfg) <= hi)
    except (TypeError, ValueError):
        cfg_ok = False
    if not cfg_ok:
        raise UserError(f"--cfg {cfg}: must be a finite number from {lo:g} to {hi:g}")
    if settings.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {settings.sampler!r}; choose one of "
                        f"{', '.join(SAMPLERS)}")
    if _integer(settings.cls) not in STYLES:
        raise UserError(f"--style {settings.cls}: choose one of 0, 1, 2")
    if getattr(settings, "mode", None) not in (None, "major", "minor"):
        raise UserError(f"--mode {settings.mode}: choose major or minor")
    return settings


def check_seconds(value, option: str) -> float:
    """A finite, non-negative time in seconds (``--start``/``--end``)."""
    if value is None:
        return value
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{option} {value}: must be a finite number of seconds >= 0")
    return value


def check_threads(threads) -> None:
    if threads is not None and not 1 <= threads <= 1024:
        raise UserError(f"--threads {threads}: must be from 1 to 1024")
