"""Write a corpus clip's media: an H.264/AAC MP4 (PyAV) and the music as a WAV file.

Both go through :func:`diffv2m.atomic.atomic_path`, so an interrupted build never leaves a
half-written file under a final name.  Frame ``k`` is stamped ``k / fps`` exactly
(time base ``1/fps``), which is what makes the manifest's frame-aligned cut times exact.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..atomic import atomic_path


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray,
              sample_rate: int, *, crf: int = 18) -> None:
    """``frames [N,H,W,3]`` uint8 RGB + mono/stereo ``audio [C,S]`` float32 -> MP4, atomically.

    Video: libx264, yuv420p, one thread (bit-identical output run to run), every frame
    at ``k / fps``.  Audio: AAC at ``sample_rate``.
    """
    import av
    n, h, w, _ = frames.shape
    rate = _fps_fraction(fps)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.codec_context.thread_count = 1
            vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            aud = np.ascontiguousarray(np.clip(audio, -1.0, 1.0).astype(np.float32))
            layout = "mono" if aud.shape[0] == 1 else "stereo"
            as_ = out.add_stream("aac", rate=sample_rate, layout=layout)
            for k in range(n):
                frame = av.VideoFrame.from_ndarray(frames[k], format="rgb24")
                frame.pts = k
                for pkt in vs.encode(frame):
                    out.mux(pkt)
            for pkt in vs.encode(None):
                out.mux(pkt)
            step = 1024
            for s in range(0, aud.shape[1], step):
                af = av.AudioFrame.from_ndarray(aud[:, s:s + step], format="fltp", layout=layout)
                af.sample_rate = sample_rate
                af.pts = s
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode(None):
                out.mux(pkt)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """``audio [C,S]`` float32 -> 16-bit PCM WAV, atomically (deterministic bytes)."""
    import soundfile as sf
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0).T, sample_rate, subtype="PCM_16",
                 format="WAV")
