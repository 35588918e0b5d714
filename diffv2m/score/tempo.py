"""The tempo of a take, estimated from its own note onsets (numpy only, torch-free).

The score family's DiT writes notes on the roll grid (:data:`~diffv2m.score.roll.FRAME_RATE`,
24 frames/s) and no tempo; a DAW needs one so that its bars line up with the notes.  The
corpus it learnt from plays every piece at one whole-number tempo in
:data:`diffv2m.data.music.TEMPO_RANGE` (70-150 BPM), which is where the estimate is looked for.

Rule (:func:`estimate_tempo`, deterministic): the onset envelope is the summed velocity of
the notes starting in each frame (every track, drums included); its autocorrelation
(mean removed, normalised to 1 at lag 0) is read, by linear interpolation, at the first
``BEATS`` multiples of each candidate beat period, and the period with the highest mean
wins (the first, i.e. the fastest, on a tie).  Candidates are whole milliseconds, so the
MIDI tempo (microseconds per quarter, :func:`diffv2m.score.midi.tempo_us`) is exact and
every frame of the roll grid falls on a whole MIDI tick
(:func:`diffv2m.score.midi.ticks_per_quarter`).  Fewer than ``MIN_ONSETS`` distinct onset
frames, or a flat envelope: no estimate (None; the MIDI file then says 120 BPM).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .events import Note
from .roll import FRAME_RATE, onset_frame

BEATS = 8                   # multiples of the beat period the autocorrelation is read at
MIN_ONSETS = 4


def onset_envelope(notes: Iterable[Note], frames: int, rate: float = FRAME_RATE) -> np.ndarray:
    """``[frames]`` float64: the summed ``velocity / 127`` of the notes starting in each frame."""
    env = np.zeros(max(int(frames), 0), np.float64)
    for n in notes:
        k = onset_frame(n.start, rate)
        if 0 <= k < len(env):
            env[k] += n.velocity / 127.0
    return env


def estimate_tempo(notes: Iterable[Note], duration: float, rate: float = FRAME_RATE,
                   bpm_range: tuple[float, float] | None = None) -> float | None:
    """The take's beats per minute (``60000 / whole milliseconds``), or None (module rule)."""
    if bpm_range is None:
        from ..data.music import TEMPO_RANGE
        bpm_range = TEMPO_RANGE
    env = onset_envelope(notes, int(np.ceil(duration * rate)), rate)
    if np.count_nonzero(env) < MIN_ONSETS:
        return None
    x = env - env.mean()
    n = len(x)
    acf = np.correlate(x, x, mode="full")[n - 1:]
    if acf[0] <= 1e-12:
        return None
    acf = acf / acf[0]
    lo, hi = bpm_range
    periods_ms = np.arange(int(np.ceil(60000.0 / hi)), int(np.floor(60000.0 / lo)) + 1)
    best, best_score = None, -np.inf
    for ms in periods_ms:
        lags = (ms / 1000.0) * rate * np.arange(1, BEATS + 1)
        lags = lags[lags <= n - 1]
        if len(lags) == 0:
            continue
        score = float(np.interp(lags, np.arange(n), acf).mean())
        if score > best_score + 1e-12:
            best, best_score = int(ms), score
    return None if best is None else 60000.0 / best
