"""The score family: the decoder gives note probabilities per window; the take is one
:class:`~diffv2m.score.events.Score` stitched from them (:mod:`diffv2m.score.take`), rendered
by FluidSynth (:mod:`diffv2m.score.render`), with the notes kept in ``Take.score``.

Extra outputs: the notes as a Standard MIDI File, and one WAV per track (stems) from the same
render as the mix.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any


class ScoreFamily:
    name = "score"
    #: the torch module that encodes/decodes this latent (training and export import it)
    autoencoder = "diffv2m.models.score_autoencoder:ScoreAutoencoder"
    outputs: frozenset[str] = frozenset({"midi", "stems"})

    def take(self, backend, conditions, settings, pieces, timings, *, progress=None,
             soundfont: str | None = None, stems: bool = False):
        """Windows of note probabilities -> one Score -> audio (and stems when asked: one
        render gives both, the mix bit for bit as without them)."""
        import numpy as np

        from diffv2m.score import take as score_take
        from diffv2m.score.render import render_mix_and_stems, render_score
        from diffv2m.synthesis import Take
        ae = backend.config.autoencoder
        rate = ae.frame_rate
        t0 = time.perf_counter()
        prob = score_take.stitch_rolls(pieces, conditions.odf, rate,
                                       max(1, int(round(conditions.duration * rate))),
                                       backend.config.window_seconds)
        reader = getattr(backend, "mood_reader", None)
        if settings.mode is not None:                  # the editor's choice
            mode, mode_from, reader_id = settings.mode, "user", None
        elif reader is not None:                       # the picture's, read by the model
            mode, mode_from, reader_id = (reader.mode(conditions.colour, settings.cls),
                                          "picture", reader.id)
        else:                                          # the notes' own
            mode = mode_from = reader_id = None
        score = score_take.score_from_probabilities(prob, duration=conditions.duration,
                                                    rate=rate, pitch_low=ae.pitch_low,
                                                    cls=settings.cls,
                                                    ensemble_name=settings.ensemble,
                                                    mode=mode, mode_from=mode_from,
                                                    mood_reader=reader_id)
        t1 = time.perf_counter()
        if progress is not None:
            progress("rendering", 0, 1)
        sr = int(settings.sample_rate or ae.sample_rate)
        tracks = None
        if stems:
            audio, tracks = render_mix_and_stems(score, sample_rate=sr, soundfont=soundfont)
        else:
            audio = render_score(score, sample_rate=sr, soundfont=soundfont)
        audio = np.asarray(audio, np.float32)
        if progress is not None:
            progress("rendering", 1, 1)
        timings["decoding"] += t1 - t0
        timings["rendering"] = time.perf_counter() - t1
        return Take(audio=audio, sample_rate=sr, settings=settings, conditions=conditions,
                    backend=backend.name, timings=timings, score=score, stems=tracks)

    def check_options(self, args, config, settings):
        from diffv2m.score.take import check_renderer
        check_renderer(args.soundfont)
        return dataclasses.replace(settings, ensemble=args.ensemble,
                                   sample_rate=args.sample_rate)

    def write_outputs(self, take, *, midi: str | os.PathLike | None = None,
                      stems: dict[str, str | os.PathLike] | None = None,
                      metadata: dict[str, Any] | None = None) -> None:
        from diffv2m.score.files import write_midi_file, write_stems
        from diffv2m.score.take import midi_file_bytes
        if midi is not None:
            write_midi_file(midi, midi_file_bytes(take.score))
        if stems is not None:
            write_stems(stems, take.stems, take.sample_rate, metadata)


FAMILY = ScoreFamily()
