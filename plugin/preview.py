"""Preview MP4 of a timeline selection: the picture the viewer sees, with a take's music.

The selection's frames (:class:`TimelineFrameSource`) are rendered once into a temporary
high-quality H.264 file, which :func:`diffv2m.media.mux` then joins with the music exactly as
it does for a plain video (atomic write, fast-start MP4).
"""
from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av

from diffv2m import media


def render_picture(source, path: Path, *, fps: float, size: tuple[int, int] | None = None) -> Path:
    """Encode ``source.frames(fps, size)`` as an H.264 MP4 at ``path`` (no audio)."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format="mp4") as out:
        stream = None
        for _, frame in source.frames(fps=float(rate), size=size):
            if stream is None:
                h, w = frame.shape[:2]
                stream = out.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
                stream.codec_context.options = {"crf": "12", "preset": "veryfast"}
            vf = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path


def render_preview(source, audio_path: str | os.PathLike, out_mp4: str | os.PathLike, *,
                   fps: float, size: tuple[int, int] | None = None) -> Path:
    """Write ``out_mp4``: the selection's picture with ``audio_path`` as its sound track."""
    with tempfile.TemporaryDirectory(prefix="diffv2m-preview-") as tmp:
        picture = render_picture(source, Path(tmp) / "picture.mp4", fps=fps, size=size)
        return media.mux(picture, audio_path, out_mp4)
