"""The generation options every front end offers, declared once: ``diffv2m generate``,
``diffv2m score`` and the panel take their defaults (:class:`~diffv2m.synthesis.Settings`),
their choices and their meaning from here; the ranges are :mod:`diffv2m.settings_limits`."""
from __future__ import annotations

import argparse

from diffv2m.diffusion import SAMPLERS
from diffv2m.synthesis import Settings

DEFAULTS = Settings()
#: the class token 0..2
STYLES = ("calm", "moderate", "energetic")
#: a score take's mode (None: the picture's, diffv2m.features.mood)
MODES = ("major", "minor")
#: the samplers of :data:`diffv2m.diffusion.SAMPLERS`, the default first (the panel's order)
SAMPLER_NAMES = ("dpmpp-2m", "euler", "ddim")
assert set(SAMPLER_NAMES) == set(SAMPLERS) and SAMPLER_NAMES[0] == DEFAULTS.sampler


def add_generation_options(p: argparse.ArgumentParser) -> None:
    """``--seed --steps --cfg --sampler --style --mode``, with the defaults of :class:`Settings`
    (an unset ``--steps`` or ``--cfg`` is None: the model's own step count and guidance,
    :attr:`~diffv2m.config.ModelConfig.default_steps` and ``default_cfg_scale``, filled in
    by :func:`diffv2m.synthesis.synthesise`)."""
    styles = ", ".join(f"{i} {name}" for i, name in enumerate(STYLES))
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="random seed (recorded in the output)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: the model's own, 15 for score, 25 for audio)")
    p.add_argument("--cfg", type=float, default=None,
                   help="classifier-free guidance scale (default: the model's own, 2 for "
                        "score, 3 for audio)")
    p.add_argument("--sampler", default=DEFAULTS.sampler, help=" | ".join(SAMPLER_NAMES))
    p.add_argument("--style", type=int, default=DEFAULTS.cls, choices=tuple(range(len(STYLES))),
                   help=f"class token: {styles} (default {DEFAULTS.cls})")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="score model: the music's mode (default: the picture's, read from its "
                        "colour grade)")


def settings_from_args(args: argparse.Namespace, *, seed_offset: int = 0) -> Settings:
    """The :class:`Settings` the options of :func:`add_generation_options` name."""
    return Settings(seed=args.seed + seed_offset, steps=args.steps, cfg_scale=args.cfg,
                    sampler=args.sampler, cls=args.style, mode=getattr(args, "mode", None))


def add_score_file_options(p: argparse.ArgumentParser) -> None:
    """``--midi PATH --stems DIR``: what a score-family take hands out besides the mix
    (:mod:`diffv2m.score.files`)."""
    p.add_argument("--midi", help="score model: also write the notes as a MIDI file")
    p.add_argument("--stems", help="score model: also write one WAV per track into this "
                                   "new (or empty) folder")

