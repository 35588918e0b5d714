"""The multi-track piano roll: note events <-> ``[tracks, 3, pitches, frames]`` (numpy only).

Layout: ``roll[track, channel, pitch - pitch_low, frame]`` with tracks in
:data:`diffv2m.score.events.TRACKS` order and channels

* ``ONSET`` (0): 1 at the frame a note starts in;
* ``FRAME`` (1): 1 on every frame the note sounds, ``[onset, offset)``;
* ``VELOCITY`` (2): ``velocity / 127`` at the onset frame (0 elsewhere).

Frames are the cue track's grid (:mod:`diffv2m.features.cue_track`): frame ``k`` covers
``[k / rate, (k + 1) / rate)`` (24 frames/s), so a note starting at ``t`` seconds is in frame
``floor(t * rate)`` and a cut and the note on it share a frame.  A note ends at frame
``max(onset + 1, round(end * rate))``.  The onset channel keeps repeated notes apart: two
notes of one pitch back to back are two onsets on a run of sounding frames, not one long note.

Decoding rule (:func:`roll_to_notes`, also for the decoder's probabilities): a note of
``(track, pitch)`` starts at frame ``k`` when ``onset[k] >= onset_threshold`` (0.5) and
``onset[k]`` is not below either neighbour (a peak; ties keep both, so a binary roll decodes
exactly), except that a peak while that pitch already sounds in frame ``k - 1`` must reach
``reonset_threshold`` (0.7) to strike again (a soft bump in the onset probability inside a
held note does not chop it into pieces); the note lasts while ``frame >= frame_threshold``
(0.3) and no new onset of that pitch starts, at least one frame; its velocity is
``clip(round(127 * velocity[k]), 1, 127)``.  Frames with no onset make no note.  A binary
roll (0/1) decodes to exactly the notes it was made from.  What a roll cannot hold: two notes
of one track and pitch starting in the same frame (one note: the longer, the louder), and the
overlap of a note by a later one of the same pitch (the first ends where the second starts).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .events import TRACKS, Note

FRAME_RATE = 24.0
ONSET, FRAME, VELOCITY = 0, 1, 2
CHANNELS = 3
ONSET_THRESHOLD = 0.5
REONSET_THRESHOLD = 0.7
FRAME_THRESHOLD = 0.3


def onset_frame(t: float, rate: float = FRAME_RATE) -> int:
    """The frame a time falls in (``floor``, robust to float noise on frame boundaries)."""
    return int(np.floor(t * rate + 1e-6))


def end_frame(start: float, end: float, rate: float = FRAME_RATE) -> int:
    return max(onset_frame(start, rate) + 1, int(round(end * rate)))


def notes_to_roll(notes: Iterable[Note], frames: int, *, rate: float = FRAME_RATE,
                  pitch_low: int = 0, pitches: int = 128) -> np.ndarray:
    """``[len(TRACKS), 3, pitches, frames]`` float32; notes outside the range are left out."""
    roll = np.zeros((len(TRACKS), CHANNELS, pitches, frames), np.float32)
    for n in notes:
        p = n.pitch - pitch_low
        on = onset_frame(n.start, rate)
        if not (0 <= p < pitches) or not (0 <= on < frames):
            continue
        ti = TRACKS.index(n.track)
        off = min(frames, end_frame(n.start, n.end, rate))
        roll[ti, FRAME, p, on:off] = 1.0
        roll[ti, ONSET, p, on] = 1.0
        roll[ti, VELOCITY, p, on] = max(roll[ti, VELOCITY, p, on], n.velocity / 127.0)
    return roll


def _onset_peaks(p: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean ``[..., frames]``: above threshold and not below either neighbour."""
    left = np.concatenate([np.full(p.shape[:-1] + (1,), -np.inf, p.dtype), p[..., :-1]], -1)
    right = np.concatenate([p[..., 1:], np.full(p.shape[:-1] + (1,), -np.inf, p.dtype)], -1)
    return (p >= threshold) & (p >= left) & (p >= right)


def roll_to_notes(roll: np.ndarray, *, rate: float = FRAME_RATE, pitch_low: int = 0,
                  onset_threshold: float = ONSET_THRESHOLD,
                  frame_threshold: float = FRAME_THRESHOLD,
                  reonset_threshold: float = REONSET_THRESHOLD) -> list[Note]:
    """Note events of a roll or of note probabilities (the module's decoding rule), sorted by
    (start, track, pitch)."""
    roll = np.asarray(roll, np.float32)
    onsets = _onset_peaks(roll[:, ONSET], onset_threshold)        # [T, P, F]
    sounding = roll[:, FRAME] >= frame_threshold
    held = np.zeros_like(sounding)
    held[..., 1:] = sounding[..., :-1]
    onsets &= ~held | (roll[:, ONSET] >= reonset_threshold)
    frames = roll.shape[-1]
    notes: list[Note] = []
    for ti, p, k in zip(*np.nonzero(onsets)):
        j = k + 1
        while j < frames and sounding[ti, p, j] and not onsets[ti, p, j]:
            j += 1
        vel = int(np.clip(round(127.0 * float(roll[ti, VELOCITY, p, k])), 1, 127))
        notes.append(Note(track=TRACKS[ti], pitch=int(p) + pitch_low, start=k / rate,
                          end=j / rate, velocity=vel))
    notes.sort(key=lambda n: (n.start, TRACKS.index(n.track), n.pitch))
    return notes


def quantise(notes: Iterable[Note], frames: int, rate: float = FRAME_RATE) -> list[Note]:
    """The notes a roll of ``frames`` keeps, on its grid (what :func:`roll_to_notes` returns
    for :func:`notes_to_roll` of ``notes``)."""
    return roll_to_notes(notes_to_roll(notes, frames, rate=rate), rate=rate)
