"""The audio family: the decoder gives waveform windows; the take is them crossfaded.

Seams are equal-power crossfades at the strongest predicted onset in each overlap
(:func:`diffv2m.synthesis.stitch`).  No extra outputs: MIDI and stems need notes.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from diffv2m.errors import UserError

SCORE_ONLY_FLAGS = ("--midi", "--stems", "--ensemble", "--soundfont", "--mode")


class AudioFamily:
    name = "audio"
    #: the torch module that encodes/decodes this latent (training and export import it)
    autoencoder = "diffv2m.models.autoencoder:Autoencoder"
    outputs: frozenset[str] = frozenset()

    def take(self, backend, conditions, settings, pieces, timings, *, progress=None,
             soundfont: str | None = None, stems: bool = False):
        from diffv2m.synthesis import Take, stitch
        cfg = backend.config
        sr = cfg.sample_rate
        total = int(round(conditions.duration * sr))
        audio = stitch(pieces, conditions.odf, sr, max(total, 1), cfg.window_seconds)
        audio = np.clip(audio, -1.0, 1.0)
        return Take(audio=audio, sample_rate=sr, settings=settings, conditions=conditions,
                    backend=backend.name, timings=timings)

    def check_options(self, args, config, settings):
        for flag in SCORE_ONLY_FLAGS:
            if getattr(args, flag[2:], None):
                raise UserError(f"{flag}: needs a score-family model (--model score); "
                                f"{config.name!r} makes audio directly")
        if args.sample_rate not in (None, config.sample_rate):
            raise UserError(f"--sample-rate {args.sample_rate}: the audio model makes "
                            f"{config.sample_rate} Hz only")
        return settings

    def write_outputs(self, take, *, midi: str | os.PathLike | None = None,
                      stems: dict[str, str | os.PathLike] | None = None,
                      metadata: dict[str, Any] | None = None) -> None:
        return None                    # nothing besides the mix (check_outputs refuses others)


FAMILY = AudioFamily()
