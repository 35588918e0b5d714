"""A media file's own start timecode (the video stream's, a QuickTime ``tmcd`` track's or
the container's ``timecode`` tag), read with PyAV; the timeline bridge places a plain video
on its timeline by it.  Torch-free."""
from __future__ import annotations

from fractions import Fraction

from diffv2m.media import _open


def start_timecode(path) -> tuple[str, Fraction | None] | None:
    """The media's own start timecode as ``(text, rate)``, or None when it carries none.

    Looks, in order, at the first video stream's ``timecode`` tag, any data stream's (a
    QuickTime/MP4 ``tmcd`` track, which FFmpeg exposes as a data stream with a ``timecode``
    tag) and the container's. ``text`` is ``HH:MM:SS:FF`` (``;`` before the frames for
    drop-frame); ``rate`` is the video stream's frame rate (None for audio-only media).
    """
    with _open(path) as container:
        vs = container.streams.video[0] if container.streams.video else None
        rate = None
        if vs is not None:
            rate = vs.base_rate or vs.average_rate or vs.guessed_rate
        tagged = ([vs] if vs is not None else []) + [s for s in container.streams
                                                     if s.type == "data"]
        for holder in tagged + [container]:
            text = (holder.metadata or {}).get("timecode")
            if text and text.strip():
                return text.strip(), (Fraction(rate) if rate else None)
    return None
