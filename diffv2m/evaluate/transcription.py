"""Musicality by an outside judge: Spotify's basic-pitch transcriber (ICASSP 2022), whose
``nmp.onnx`` ships inside the ``basic-pitch`` wheel, run with ONNX Runtime.  Torch-free.

Install: ``pip install --no-deps basic-pitch`` (its metadata pulls tensorflow on Linux) plus
the ``eval`` extra (``pretty_midi``, ``mir_eval``, ``resampy>=0.4.3``).  Nothing is downloaded:
the graph is the one inside the installed package.

* :func:`confident_note_fraction`: share of the model's frames (22050 Hz / 256 hop, ~86 per
  second) whose largest note posterior exceeds ``CONFIDENT`` (0.5).  Corpus music: ~0.8.
* note-F1 (:func:`diffv2m.evaluate.note_f1.intervals_f1`): ``mir_eval.transcription``
  precision/recall/F1 of note onsets (tolerance ``note_f1.ONSET_TOL`` = 50 ms, same MIDI pitch,
  offsets ignored) between two note lists.  Used for
  a score take (its own notes vs the transcription of its rendering: the render round trip)
  and for the audio family's autoencoder round trip (transcription of the corpus audio vs the
  transcription of its reconstruction).  Drum-track notes are left out (GM percussion keys
  are not pitches); transcriptions come from basic-pitch's own note decoding at its defaults.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .note_f1 import intervals_f1

CONFIDENT = 0.5
INSTALL_HINT = ("pip install --no-deps basic-pitch && "
                "pip install pretty_midi mir_eval 'resampy>=0.4.3'")

_MODEL = None
_LOCK = threading.Lock()


@dataclass
class Transcription:
    note_posteriors: np.ndarray            # [frames, 88] in [0, 1]
    intervals: np.ndarray                  # [M, 2] seconds
    pitches: np.ndarray                    # [M] MIDI note numbers

    @property
    def confident_note_fraction(self) -> float:
        return confident_note_fraction(self.note_posteriors)


def _import_basic_pitch():
    """``basic_pitch.inference`` (its import logs warnings about tensorflow/coreml/tflite
    not being installed: silenced), or ImportError."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        import basic_pitch
        import basic_pitch.inference as inference
    finally:
        logging.disable(previous)
    return basic_pitch, inference


def available() -> str | None:
    """None when the judge can run, else the reason (one line, with what to install)."""
    try:
        import mir_eval  # noqa: F401
        import onnxruntime  # noqa: F401
        model_path()
    except (ImportError, UserError) as exc:
        return f"basic-pitch transcriber not available ({exc}); install: {INSTALL_HINT}"
    return None


def model_path() -> Path:
    """The ``nmp.onnx`` graph inside the installed basic-pitch package."""
    try:
        basic_pitch, _ = _import_basic_pitch()
    except ImportError as exc:
        raise UserError(f"basic-pitch is not installed ({exc})") from None
    path = Path(basic_pitch.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise UserError(f"{path}: basic-pitch's ONNX model is missing from the installed package")
    return path


def _model():
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _, inference = _import_basic_pitch()
            _MODEL = inference.Model(model_path())
        return _MODEL


def transcribe_file(path) -> Transcription:
    """Run basic-pitch (ONNX Runtime, CPU) on an audio file at its default thresholds."""
    _, inference = _import_basic_pitch()
    model = _model()
    # predict() prints a banner; its note decoding divides by zero on silence (harmless)
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(invalid="ignore", divide="ignore"):
        output, _, events = inference.predict(str(path), model)
    if events:
        intervals = np.array([[e[0], e[1]] for e in events], np.float64)
        pitches = np.array([e[2] for e in events], np.int64)
    else:
        intervals, pitches = np.zeros((0, 2)), np.zeros(0, np.int64)
    return Transcription(np.asarray(output["note"], np.float32), intervals, pitches)


def transcribe(audio: np.ndarray, sample_rate: int) -> Transcription:
    """Transcribe samples ([N] or [C, N], mixed to mono) through a temporary WAV file."""
    import soundfile as sf
    y = np.asarray(audio, np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    with tempfile.TemporaryDirectory(prefix="diffv2m-bp-") as tmp:
        wav = Path(tmp) / "audio.wav"
        sf.write(str(wav), y, int(sample_rate), subtype="FLOAT")
        return transcribe_file(wav)


def confident_note_fraction(note_posteriors: np.ndarray, threshold: float = CONFIDENT) -> float:
    """Share of frames whose largest note posterior exceeds ``threshold`` (0 for no frames)."""
    p = np.asarray(note_posteriors)
    if p.ndim != 2 or p.shape[0] == 0:
        return 0.0
    return float(np.mean(p.max(axis=1) > threshold))


def score_notes(notes, *, with_drums: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(intervals [M, 2], MIDI pitches [M]) of ``Note`` objects; drums left out by default."""
    sel = [n for n in notes if with_drums or n.track != "drums"]
    if not sel:
        return np.zeros((0, 2)), np.zeros(0, np.int64)
    return (np.array([[n.start, n.end] for n in sel], np.float64),
            np.array([n.pitch for n in sel], np.int64))


def render_round_trip(notes, transcription: Transcription) -> dict:
    """Note-F1 between a score's own (pitched) notes and the transcription of its rendering."""
    ri, rp = score_notes(notes)
    return intervals_f1(ri, rp, transcription.intervals, transcription.pitches)


def transcription_f1(reference: Transcription, estimate: Transcription) -> dict:
    """Note-F1 between two transcriptions (e.g. corpus audio vs its autoencoder round trip)."""
    return intervals_f1(reference.intervals, reference.pitches, estimate.intervals,
                        estimate.pitches)
