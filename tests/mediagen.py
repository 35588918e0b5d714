"""Synthesise small test videos and audio with PyAV, for the whole team's tests.

Every video frame carries its own frame index as a visible binary code, so a test can check
*which* frame a decoder returned (seek accuracy, frame selection at a sampling rate, rotation)
from the pixels alone: the top quarter of the picture is a row of ``CODE_BITS`` cells, white
for a 1 bit and black for a 0 bit, most significant bit on the left. Below the code each shot
is a solid colour that changes abruptly at ``cut_times``. Frames are drawn in *display*
orientation; with ``rotation`` the coded pixels are rotated the other way and the stream
carries a display matrix, so a correct reader gives back upright frames.

Independent of ``diffv2m.media`` on purpose (it only uses PyAV and numpy), so it can test it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODE_BITS = 12
DEFAULT_COLOURS = ((200, 40, 40), (40, 160, 60), (50, 70, 200), (220, 200, 40),
                   (150, 50, 170), (40, 190, 190))
_VFR_TIME_BASE = Fraction(1, 90000)


@dataclass
class GeneratedVideo:
    """What ``make_video`` wrote: enough for a test to know the truth about every frame."""

    path: Path
    frame_times: list[float]            # presentation time of each frame, seconds
    duration: float                     # last frame time + its duration
    fps: Fraction                       # nominal rate (VFR: the base rate)
    display_size: tuple[int, int]       # (width, height) as a viewer shows it
    coded_size: tuple[int, int]         # (width, height) of the encoded pictures
    rotation: int
    cut_times: tuple[float, ...] = ()
    colours: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.frame_times)

    def index_at(self, t: float, eps: float = 1e-4) -> int:
        """Index of the frame showing at time ``t`` (last frame with time <= t)."""
        times = np.asarray(self.frame_times)
        return int(np.searchsorted(times, t + eps, side="right") - 1)

    def shot_at(self, t: float) -> int:
        return int(np.searchsorted(np.asarray(self.cut_times, float), t, side="right"))


def draw_frame(index: int, size: tuple[int, int], colour) -> np.ndarray:
    """An RGB frame ``[H, W, 3]`` showing ``colour`` with ``index`` coded in the top quarter."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colour
    strip = max(h // 4, 4)
    img[:strip] = 0
    edges = np.linspace(0, w, CODE_BITS + 1).round().astype(int)
    for bit in range(CODE_BITS):
        if (index >> (CODE_BITS - 1 - bit)) & 1:
            img[:strip, edges[bit]:edges[bit + 1]] = 255
    return img


def read_frame_index(frame: np.ndarray) -> int:
    """Decode the index drawn by ``draw_frame`` from a (possibly resized) display frame."""
    h, w = frame.shape[:2]
    strip = max(h // 4, 4)
    row = frame[strip // 4: max(strip * 3 // 4, strip // 4 + 1)].mean(axis=(0, 2))
    edges = np.linspace(0, w, CODE_BITS + 1)
    value = 0
    for bit in range(CODE_BITS):
        lo, hi = edges[bit], edges[bit + 1]
        pad = (hi - lo) / 4
        cell = row[int(lo + pad): max(int(hi - pad), int(lo + pad) + 1)]
        value = (value << 1) | int(cell.mean() > 128)
    return value


def frame_colour(frame: np.ndarray) -> np.ndarray:
    """Mean RGB of the shot area (below the code strip), as float [3]."""
    h = frame.shape[0]
    return frame[h // 2:].reshape(-1, 3).mean(axis=0)


def _frame_times(seconds: float, fps: Fraction, vfr: bool) -> list[float]:
    """Frame times: regular at ``fps``; VFR alternates one and two base intervals."""
    step = 1 / fps
    times, t, i = [], Fraction(0), 0
    while t < Fraction(seconds).limit_denominator(10**6) - Fraction(1, 10**9):
        times.append(t)
        t += step if (not vfr or i % 2 == 0) else 2 * step
        i += 1
    return [float(x) for x in times]


def make_video(path, *, seconds: float = 2.0, fps=Fraction(24), size=(160, 96),
               codec: str = "h264", cut_times=(), colours=None, with_audio: bool = False,
               vfr: bool = False, rotation: int = 0, audio_sr: int = 48000,
               bpm: float = 120.0, sar=Fraction(1), faststart: bool = False,
               rotate_tag: int | None = None, timecode: str | None = None) -> GeneratedVideo:
    """Write an MP4 whose frames encode their index; return the ground truth.

    ``fps`` may be a Fraction (24000/1001, 30000/1001). ``size`` is the *display* size; with
    ``rotation`` (counter-clockwise degrees, FFmpeg's display-matrix convention, one of
    0/90/180/270) the coded picture is the display picture rotated back, so a 90° file of
    display size (96, 160) is coded as 160x96. ``vfr`` makes every other frame last twice as
    long. ``with_audio`` adds an AAC stereo click track at ``bpm``. ``sar`` (sample aspect
    ratio, e.g. 2 for pixels twice as wide as tall) stores the picture squeezed horizontally
    to ``width / sar`` coded pixels, so a reader honouring it restores ``size``.
    ``faststart`` puts the index (moov) before the media data, as streaming files do.
    ``rotate_tag`` writes the legacy ``rotate`` stream tag (degrees *clockwise*) instead of a
    display matrix; FFmpeg 8's MP4 muxer drops that tag, so use it with a ``.mkv`` path
    (the container follows the suffix: .mkv is Matroska, anything else MP4).
    ``timecode`` (``"01:00:00:00"``, ``;`` for drop-frame) embeds a start timecode: the
    stream's ``timecode`` tag, which FFmpeg's MP4 muxer writes as a QuickTime ``tmcd`` track.
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(100000)
    colours = [tuple(c) for c in (colours or DEFAULT_COLOURS)]
    cut_times = tuple(float(c) for c in cut_times)
    times = _frame_times(seconds, fps, vfr)
    k = ((-rotate_tag if rotate_tag is not None else rotation) // 90) % 4
    sar = Fraction(sar)
    dw, dh = size
    sw = int(round(dw / sar))            # stored width before rotation
    cw, ch = (dh, sw) if k % 2 else (sw, dh)
    cols = np.minimum((np.arange(sw) * dw / sw).astype(int), dw - 1)

    options = {"movflags": "+faststart"} if faststart else {}
    fmt = "matroska" if path.suffix.lower() == ".mkv" else "mp4"
    out = av.open(str(path), "w", format=fmt, options=options)
    try:
        vs = out.add_stream("libx264" if codec == "h264" else codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = cw, ch, "yuv420p"
        if codec == "h264":
            vs.codec_context.options = {"preset": "veryfast"}
        tb = _VFR_TIME_BASE if vfr else 1 / fps
        vs.codec_context.time_base = tb
        if timecode is not None:
            vs.metadata["timecode"] = timecode
        if rotate_tag is not None:
            vs.metadata["rotate"] = str(rotate_tag)
        elif k:
            vs.set_display_rotation(90 * k)
        if sar != 1:
            vs.codec_context.sample_aspect_ratio = sar
        aus = None
        if with_audio:
            aus = out.add_stream("aac", rate=audio_sr, layout="stereo")
        for i, t in enumerate(times):
            shot = int(np.searchsorted(np.asarray(cut_times), t, side="right"))
            img = draw_frame(i, size, colours[shot % len(colours)])
            if sar != 1:
                img = np.ascontiguousarray(img[:, cols])
            coded = np.ascontiguousarray(np.rot90(img, -k)) if k else img
            frame = av.VideoFrame.from_ndarray(coded, format="rgb24")
            frame.pts = round(Fraction(t).limit_denominator(10**6) / tb)
            frame.time_base = tb
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            clicks = make_click_track(None, bpm=bpm, seconds=seconds, sr=audio_sr)
            stereo = np.ascontiguousarray(np.repeat(clicks, 2, axis=0))
            afr = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
            afr.sample_rate, afr.pts, afr.time_base = audio_sr, 0, Fraction(1, audio_sr)
            for packet in aus.encode(afr):
                out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    finally:
        out.close()
    last = times[-1] + float(1 / fps if not vfr or (len(times) - 1) % 2 == 0 else 2 / fps)
    return GeneratedVideo(path=path, frame_times=times, duration=last, fps=fps,
                          display_size=(dw, dh), coded_size=(cw, ch), rotation=90 * k,
                          cut_times=cut_times, colours=colours)


def make_empty_video(path, *, size=(64, 48)) -> Path:
    """An MP4 with an H.264 video stream that holds no frames (a zero-length clip)."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        out.start_encoding()             # write the header although no frame follows
    return path


def make_click_track(path=None, *, bpm: float = 120.0, seconds: float = 4.0, sr: int = 22050,
                     click_seconds: float = 0.02, freq: float = 1000.0) -> np.ndarray:
    """A mono click track ``[1, N]`` float32: a decaying ``freq`` Hz burst on every beat.

    Beats fall at ``k * 60 / bpm`` seconds. With ``path`` the track is also written as a
    16-bit WAV (via PyAV, not diffv2m.media, so it can test that module).
    """
    n = int(round(seconds * sr))
    audio = np.zeros(n, np.float32)
    m = int(click_seconds * sr)
    tt = np.arange(m) / sr
    click = (0.8 * np.sin(2 * np.pi * freq * tt) * np.exp(-tt / (click_seconds / 4))).astype(np.float32)
    for beat in np.arange(0, seconds, 60.0 / bpm):
        s = int(round(beat * sr))
        e = min(n, s + m)
        audio[s:e] += click[:e - s]
    audio = audio[None, :]
    if path is not None:
        write_wav(path, audio, sr)
    return audio


def beat_times(bpm: float, seconds: float) -> np.ndarray:
    """Beat times of ``make_click_track`` with the same arguments."""
    return np.arange(0, seconds, 60.0 / bpm)


def write_wav(path, audio: np.ndarray, sr: int, codec: str = "pcm_s16le") -> Path:
    """Write ``audio [C, N]`` float32 with PyAV (``codec``: pcm_s16le, flac, aac, ...)."""
    path = Path(path)
    audio = np.ascontiguousarray(np.asarray(audio, np.float32).reshape(len(audio), -1))
    layout = {1: "mono", 2: "stereo"}[audio.shape[0]]
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=sr, layout=layout)
        frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = sr, 0, Fraction(1, sr)
        for packet in st.encode(frame):
            out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return path


def make_tone(path, *, seconds: float = 1.0, sr: int = 48000, channels: int = 2,
              freq: float = 440.0, codec: str = "pcm_s16le") -> np.ndarray:
    """Write a sine tone (left channel ``freq``, right ``2*freq``); return it ``[C, N]``."""
    t = np.arange(int(round(seconds * sr))) / sr
    audio = np.stack([0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)])
    audio = audio.astype(np.float32)
    write_wav(path, audio, sr, codec=codec)
    return audio
