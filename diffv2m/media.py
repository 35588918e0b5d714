"""Media I/O: probe, frame decoding at fixed rates, audio reading and preview muxing with PyAV;
WAV/FLAC writing with soundfile (libsndfile).

Torch-free on purpose: the ONNX runtime and the editor plugin import this module with torch
blocked. Frames come out as ``uint8 [H, W, 3]`` RGB in *display* orientation (the stream's
display-matrix rotation and non-square pixels applied); audio as ``float32 [C, N]``.

Times are seconds on the file's timeline: 0 is the container's start time, so video and audio
of one file share one clock. Decoding streams frame by frame (seek to the start, decode only
the range), so memory stays bounded whatever the file's length. Every problem with a user's
file is raised as ``UserError("<path>: <problem>")`` on one line; outputs are written through
``atomic_path`` so a failure never leaves a half-written file.

PyAV loads on first use (importlib's ``LazyLoader``): a new take of a video whose probe the
cache keeps (:mod:`diffv2m.media_probe_cache`) decodes nothing and writes its WAV with
soundfile, so it never pays PyAV's ~70 ms import.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from diffv2m.atomic import atomic_path
from diffv2m.errors import UserError
from diffv2m.progress import Progress


def _lazy_import(name: str):
    """Module ``name``, executed on its first attribute access (never when it is already
    imported: then that module)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


av = _lazy_import("av")

#: Tolerance (seconds) when comparing a frame's time with a requested time; far below any
#: frame interval, far above float rounding of rational frame times.
EPS = 1e-4
#: Packets scanned by ``probe`` to tell constant from variable frame rate.
VFR_SCAN_PACKETS = 2000
#: Sample rates the AAC encoder accepts (others are resampled to 48 kHz in ``mux``).
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)



@dataclass
class AudioStreamInfo:
    index: int
    sample_rate: int
    channels: int
    codec: str
    duration: float


@dataclass
class MediaInfo:
    """What ``probe`` found. Sizes: ``width``/``height`` are coded pixels; ``display_*`` are
    what a viewer shows (sample aspect ratio, then rotation, applied). ``rotation`` is the
    counter-clockwise angle (0/90/180/270) the display matrix turns the coded picture by
    (FFmpeg's convention, as ffprobe prints it). ``frame_rate`` is the nominal rate (the
    average rate for a VFR file); ``fps`` its float."""

    path: Path
    duration: float
    has_video: bool
    width: int = 0
    height: int = 0
    display_width: int = 0
    display_height: int = 0
    rotation: int = 0
    fps: float = 0.0
    frame_rate: Fraction | None = None
    vfr: bool = False
    video_codec: str | None = None
    audio_streams: list[AudioStreamInfo] = field(default_factory=list)
    sample_aspect_ratio: Fraction = Fraction(1)
    frames: int = 0                      # video frames counted (up to VFR_SCAN_PACKETS)
    start_time: float = 0.0              # container start time (the timeline's zero)


def _err(path, problem: str) -> UserError:
    """A one-line ``UserError`` naming ``path``."""
    text = " ".join(str(problem).split())
    return UserError(f"{path}: {text}")


def _open(path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every failure into a one-line ``UserError``."""
    p = Path(path)
    if not p.exists():
        raise _err(path, "no such file")
    if not p.is_file():
        raise _err(path, "not a file")
    if p.stat().st_size == 0:
        raise _err(path, "empty file (zero bytes)")
    try:
        container = av.open(str(p), "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise _err(path, f"not a readable media file ({_reason(exc)})") from None
    try:
        _check_complete(path, container, p.stat().st_size)
    except BaseException:
        container.close()
        raise
    return container


def _check_complete(path, container, file_size: int) -> None:
    """Raise if the container's index points past the end of the file (a truncated MP4
    whose header survived) or a stream lost its codec parameters."""
    for stream in container.streams:
        if stream.type in ("video", "audio") and stream.codec_context is None:
            raise _err(path, f"damaged file (stream {stream.index} has no codec parameters)")
        try:
            entries = stream.index_entries
            n = len(entries)
            tail = [entries[i] for i in range(max(0, n - 16), n)]
        except (AttributeError, av.error.FFmpegError):
            continue
        data_end = max((e.pos + e.size for e in tail if e.pos >= 0), default=0)
        if data_end > file_size:
            raise _err(path, f"truncated file (media data runs to byte {data_end}, "
                             f"the file has {file_size})")


def _reason(exc: BaseException) -> str:
    """Short text of a PyAV/OS error, without the file name FFmpeg appends."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _origin(container) -> float:
    """The file timeline's zero: the container's start time in seconds."""
    st = container.start_time
    return st / av.time_base if st is not None and st > 0 else 0.0


def _stream_seconds(stream, value) -> float | None:
    if value is None or stream.time_base is None:
        return None
    return float(value * stream.time_base)


def _stream_end(container, stream, origin: float) -> float | None:
    """End of ``stream`` on the file timeline (start + duration), or None if unknown."""
    dur = _stream_seconds(stream, stream.duration)
    if dur is None or dur <= 0:
        return None
    start = _stream_seconds(stream, stream.start_time) or 0.0
    return start + dur - origin


def _container_duration(container) -> float:
    return container.duration / av.time_base if container.duration else 0.0


def _first_video_frame(container, stream):
    """Decode the first frame of ``stream`` (for its display matrix), or None."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError:
        return None
    return None


def _rotation_of(stream, frame) -> int:
    """Counter-clockwise display rotation from the frame's display matrix or the legacy
    ``rotate`` tag (which counts clockwise), snapped to a multiple of 90."""
    deg = None
    if frame is not None:
        try:
            deg = frame.rotation
        except (AttributeError, av.error.FFmpegError):
            deg = None
    if not deg:
        tag = {k.lower(): v for k, v in stream.metadata.items()}.get("rotate")
        if tag:
            try:
                deg = -float(tag)
            except ValueError:
                deg = 0
    return int(round((deg or 0) / 90.0)) % 4 * 90


def _scan_packets(container, stream, limit: int) -> list[float]:
    """Presentation times (stream time base units) of up to ``limit`` video packets."""
    pts = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if len(pts) >= limit:
                break
    except av.error.FFmpegError:
        pass
    return sorted(pts)


def _is_vfr(pts: list[int]) -> bool:
    """True when frame intervals differ by more than 10% (or one tick) from each other."""
    if len(pts) < 3:
        return False
    d = np.diff(np.asarray(pts, np.float64))
    d = d[d > 0]
    if len(d) < 2:
        return False
    return float(d.max() - d.min()) > max(1.0, 0.1 * float(np.median(d)))


def probe(path) -> MediaInfo:
    """Describe ``path``: duration, video geometry and rate (CFR or VFR), audio streams."""
    with _open(path) as container:
        origin = _origin(container)
        audio = []
        for st in container.streams.audio:
            cc = st.codec_context
            end = _stream_end(container, st, origin)
            audio.append(AudioStreamInfo(index=st.index, sample_rate=int(cc.sample_rate or 0),
                                         channels=int(cc.channels or 0),
                                         codec=cc.name, duration=end or _container_duration(container)))
        if not container.streams.video:
            if not audio:
                raise _err(path, "no audio or video stream")
            duration = max(a.duration for a in audio)
            return MediaInfo(path=Path(path), duration=duration, has_video=False,
                             audio_streams=audio, start_time=origin)
        vs = container.streams.video[0]
        cc = vs.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        pts = _scan_packets(container, vs, VFR_SCAN_PACKETS)
        if not pts or width <= 0 or height <= 0:
            raise _err(path, "video stream has no frames (zero-length clip)")
        vfr = _is_vfr(pts)
        container.seek(0, stream=vs, backward=True)
        first = _first_video_frame(container, vs)
        if first is None:
            raise _err(path, "no decodable video frame (damaged or truncated file)")
        rotation = _rotation_of(vs, first)
        sar = vs.sample_aspect_ratio or Fraction(1)
        if sar <= 0:
            sar = Fraction(1)
        duration = _stream_end(container, vs, origin) or _container_duration(container)
        nframes = int(vs.frames or 0) or len(pts)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not vfr:
            rate = vs.base_rate or vs.guessed_rate or rate
        if rate is None and duration > 0:
            rate = Fraction(nframes / duration).limit_denominator(1001)
        dw = max(1, int(round(width * sar)))
        dh = height
        if rotation in (90, 270):
            dw, dh = dh, dw
        if duration <= 0:
            raise _err(path, "video stream has zero duration (zero-length clip)")
        return MediaInfo(path=Path(path), duration=duration, has_video=True, width=width,
                         height=height, display_width=dw, display_height=dh, rotation=rotation,
                         fps=float(rate) if rate else 0.0, frame_rate=rate, vfr=vfr,
                         video_codec=cc.name, audio_streams=audio, sample_aspect_ratio=sar,
                         frames=nframes, start_time=origin)


def check_range(path, duration: float, start: float, end: float | None,
                slack: float = 0.0) -> tuple[float, float]:
    """Validate ``[start, end)`` against a file of ``duration`` s; return it with ``end`` set.

    ``end`` may overshoot the file by ``slack`` (rounding of timeline ranges) and is then
    clamped to the duration.
    """
    start = float(start)
    if not math.isfinite(start) or start < 0:
        raise _err(path, f"range start {start:g}s is before the beginning of the file")
    if start >= duration - EPS:
        raise _err(path, f"range start {start:.3f}s is at or past the end of the file "
                         f"({duration:.3f}s)")
    end = duration if end is None else float(end)
    if not math.isfinite(end) or end > duration + slack + EPS:
        raise _err(path, f"range end {end:.3f}s is past the end of the file ({duration:.3f}s)")
    end = min(end, duration)
    if end <= start + EPS:
        raise _err(path, f"empty range {start:.3f}s-{end:.3f}s (zero-length clip)")
    return start, end


def _display_converter(info: MediaInfo, size: tuple[int, int] | None):
    """A function ``VideoFrame -> uint8 [H, W, 3]`` in display orientation at ``size``."""
    dw, dh = (int(size[0]), int(size[1])) if size else (info.display_width, info.display_height)
    if dw <= 0 or dh <= 0:
        raise ValueError(f"size must be positive, got {size}")
    k = info.rotation // 90
    cw, ch = (dh, dw) if k % 2 else (dw, dh)

    def convert(frame) -> np.ndarray:
        rgb = frame.reformat(width=cw, height=ch, format="rgb24").to_ndarray()
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    return convert


def _decoded(path, container, vs, start: float, origin: float) -> Iterator[tuple[float, object]]:
    """Decoded frames ``(time on file timeline, VideoFrame)`` from the keyframe before
    ``start`` onwards, in presentation order."""
    tb = vs.time_base
    step = 1.0 / float(vs.average_rate or vs.guessed_rate or 25)

    def run(seek_to: float):
        if seek_to > 0:
            container.seek(int((seek_to + origin) / tb), stream=vs, backward=True)
        last = None
        for frame in container.decode(vs):
            if frame.pts is not None:
                t = float(frame.pts * tb) - origin
            else:
                t = 0.0 if last is None else last + step
            last = t
            yield t, frame

    try:
        gen = run(start)
        first = next(gen, None)
        if first is not None and first[0] > start + EPS and start > 0:
            # The seek overshot (a file with a poor index): decode from the beginning instead.
            gen.close()
            container.seek(int(origin / tb) if origin else 0, stream=vs, backward=True)
            gen = run(0.0)
            first = next(gen, None)
        if first is None:
            return
        yield first
        yield from gen
    except av.error.FFmpegError as exc:
        raise _err(path, f"cannot decode video ({_reason(exc)}): damaged or truncated file") \
            from None


def iter_frames(path, *, fps=None, start: float = 0.0, end: float | None = None,
                size: tuple[int, int] | None = None,
                info: MediaInfo | None = None,
                from_showing: bool = False) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, frame)`` from ``[start, end)`` of ``path``'s first video stream.

    With ``fps=None``: every native frame whose time is in the range (``t`` = its
    presentation time; with ``from_showing`` the first is the frame *showing* at ``start``,
    which may begin before it). With ``fps``: one frame per ``start + k/fps`` for
    ``k = 0 .. ceil((end-start)*fps) - 1``, the frame *showing* at that time (the last frame
    whose time is <= it), and ``t`` = that sample time. ``size=(w, h)`` is the output size in
    display orientation (default: the display size). Frames are decoded one at a time.
    """
    info = info or probe(path)
    if not info.has_video:
        raise _err(path, "no video stream")
    start, end = check_range(path, info.duration, start, end,
                             slack=1.0 / info.fps if info.fps else 0.0)
    convert = _display_converter(info, size)
    with _open(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        frames = _decoded(path, container, vs, start, info.start_time)
        if fps is None:
            previous = None
            for t, frame in frames:
                if t < start - EPS:
                    previous = (t, frame)
                    continue
                if t >= end - EPS:
                    break
                if from_showing and previous is not None and t > start + EPS:
                    yield previous[0], convert(previous[1])
                previous = None
                yield t, convert(frame)
            return
        yield from _sampled(path, frames, float(fps), start, end, convert)


def _sampled(path, frames, fps: float, start: float, end: float, convert):
    """Pick the frame showing at each ``start + k/fps`` from a decoded frame stream."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = max(1, math.ceil((end - start) * fps - 1e-9))
    k, current, cached = 0, None, (None, None)

    def emit(frame):
        nonlocal cached
        if cached[0] is not frame:
            cached = (frame, convert(frame))
        return cached[1]

    for t, frame in frames:
        while k < n and t > start + k / fps + EPS:
            yield start + k / fps, emit(current if current is not None else frame)
            k += 1
        if k >= n:
            return
        current = frame
    if current is None:
        raise _err(path, "no decodable video frames in the range (damaged or truncated file)")
    while k < n:
        yield start + k / fps, emit(current)
        k += 1


def decode_frames(path, *, fps=None, start: float = 0.0, end: float | None = None,
                  size: tuple[int, int] | None = None,
                  info: MediaInfo | None = None) -> tuple[np.ndarray, np.ndarray]:
    """List form of ``iter_frames``: ``(times [N] float64, frames [N, H, W, 3] uint8)``."""
    times, frames = [], []
    for t, frame in iter_frames(path, fps=fps, start=start, end=end, size=size, info=info):
        times.append(t)
        frames.append(frame)
    if not frames:
        raise _err(path, f"no video frames in the range starting at {start:.3f}s")
    return np.asarray(times, np.float64), np.stack(frames)


def file_identity(path) -> dict:
    """What the caches key a media file by: its resolved path, size and modification time."""
    path = Path(path)
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class FileFrameSource:
    """A video file range as a frame source (the protocol the features code consumes).

    ``frames(fps, size)`` yields ``(t - start, frame)``; ``cache_key()`` changes whenever the
    file (path, size, modification time) or the range changes.
    """

    def __init__(self, path, start: float = 0.0, end: float | None = None, *,
                 info: MediaInfo | None = None):
        """``info``: the file's probe when the caller has it (the probe cache, the panel's
        opened video); else the file is probed here."""
        self.path = Path(path)
        self.info = probe(self.path) if info is None else info
        if not self.info.has_video:
            raise _err(path, "no video stream")
        slack = 1.0 / self.info.fps if self.info.fps else 0.0
        self.start, self.end = check_range(path, self.info.duration, start, end, slack=slack)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def frames(self, fps=None, size: tuple[int, int] | None = None
               ) -> Iterator[tuple[float, np.ndarray]]:
        for t, frame in iter_frames(self.path, fps=fps, start=self.start, end=self.end,
                                    size=size, info=self.info):
            yield t - self.start, frame

    def cache_key(self) -> str:
        ident = {**file_identity(self.path), "start": round(self.start, 6),
                 "end": round(self.end, 6)}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"FileFrameSource({str(self.path)!r}, start={self.start:g}, end={self.end:g})"


# ----------------------------------------------------------------------------- audio

def _layout_for(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def read_audio(path, sr: int, *, mono: bool = True, start: float = 0.0,
               end: float | None = None, channels: int | None = None) -> np.ndarray:
    """Decode ``[start, end)`` of the first audio stream, resampled to ``sr``: ``[C, N]``.

    ``N = round((end - start) * sr)`` exactly (zero-padded if the stream ends early).
    ``mono`` mixes down to one channel; otherwise ``channels`` (default: the source's).
    """
    sr = int(sr)
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    with _open(path) as container:
        if not container.streams.audio:
            raise _err(path, "no audio stream")
        ast = container.streams.audio[0]
        origin = _origin(container)
        duration = _stream_end(container, ast, origin) or _container_duration(container)
        if duration <= 0:
            raise _err(path, "audio stream has zero duration")
        start, end = check_range(path, duration, start, end, slack=0.05)
        n_out = int(round((end - start) * sr))
        src_channels = int(ast.codec_context.channels or 1)
        out_channels = 1 if mono else int(channels or src_channels)
        resampler = av.AudioResampler(format="fltp", layout=_layout_for(out_channels), rate=sr)
        chunks, total, t0 = [], 0, None
        try:
            if start > 0:
                container.seek(int((start + origin) / ast.time_base), stream=ast, backward=True)
            for frame in container.decode(ast):
                if t0 is None:
                    t0 = (float(frame.pts * ast.time_base) - origin) if frame.pts is not None \
                        else 0.0
                    need = n_out + max(0, int(round((start - t0) * sr)))
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    total += chunks[-1].shape[1]
                if total >= need + sr // 10:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            raise _err(path, f"cannot decode audio ({_reason(exc)})") from None
    if t0 is None:
        raise _err(path, "audio stream has no decodable samples")
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((out_channels, 0), np.float32)
    offset = int(round((start - t0) * sr))
    if offset < 0:
        audio = np.concatenate([np.zeros((audio.shape[0], -offset), np.float32), audio], axis=1)
        offset = 0
    audio = audio[:, offset:offset + n_out]
    if audio.shape[1] < n_out:
        audio = np.pad(audio, ((0, 0), (0, n_out - audio.shape[1])))
    return np.ascontiguousarray(audio, dtype=np.float32)


_AUDIO_FORMATS = {".wav": "wav", ".flac": "flac"}


def write_audio(path, audio: np.ndarray, sr: int, metadata: dict | None = None, *,
                subtype: str = "pcm16") -> Path:
    """Write ``audio [C, N]`` (or ``[N]``) as WAV or FLAC (by suffix), atomically.

    WAV is 16-bit PCM (``subtype="pcm16"``) or 32-bit float (``subtype="float"``); FLAC is
    16-bit. Samples are clipped to [-1, 1]; 16-bit samples are ``round(x * 32768)`` (ties to
    even) held to the int16 range, as FFmpeg converts. ``metadata`` is stored as JSON in the
    file's comment (a WAV's LIST/INFO ICMT chunk, a FLAC's Vorbis COMMENT), which
    :func:`read_audio_metadata` reads back.
    """
    import soundfile
    path = Path(path)
    fmt = _AUDIO_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise _err(path, f"unsupported audio format '{path.suffix}' (use .wav or .flac)")
    if subtype not in ("pcm16", "float"):
        raise ValueError(f"subtype must be 'pcm16' or 'float', got {subtype!r}")
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[1] < 1:
        raise ValueError(f"audio must be [channels, samples], got shape {audio.shape}")
    channels = audio.shape[0]
    # one interleaved work copy ([N, C], as the file holds it), converted in place: a long
    # take costs one more buffer of its length, not six
    data = np.ascontiguousarray(audio.T)
    if np.shares_memory(data, audio):           # audio was a transposed [N, C] array
        data = data.copy()
    np.nan_to_num(data, copy=False)
    np.clip(data, -1.0, 1.0, out=data)
    if fmt == "wav" and subtype == "float":
        sf_subtype = "FLOAT"
    else:
        np.multiply(data, np.float32(32768.0), out=data)
        np.rint(data, out=data)
        np.clip(data, -32768, 32767, out=data)
        data, sf_subtype = data.astype(np.int16), "PCM_16"
    # encoded in memory, then written as bytes: a failing disk is an OSError with its errno
    # (libsndfile itself says only "System error")
    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", samplerate=int(sr), channels=channels,
                             subtype=sf_subtype, format=fmt.upper()) as out:
        if metadata:
            out.comment = json.dumps(metadata, sort_keys=True, default=str)
        out.write(data)
    try:
        with atomic_path(path) as tmp:
            _write_bytes(tmp, buf.getbuffer())
    except OSError as exc:                  # named after the output, not its temporary
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    return path


def _write_bytes(path: Path, data) -> None:
    with open(path, "wb") as f:
        f.write(data)


def read_audio_metadata(path) -> dict:
    """The metadata dict ``write_audio`` stored; ``{}`` if none, ``{"comment": text}`` if the
    comment is not JSON."""
    with _open(path) as container:
        if not (container.streams.audio or container.streams.video):
            raise _err(path, "no audio or video stream")
        tags = {k.lower(): v for k, v in container.metadata.items()}
        for st in container.streams:
            for k, v in st.metadata.items():
                tags.setdefault(k.lower(), v)
    text = tags.get("comment")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"comment": text}
    return value if isinstance(value, dict) else {"comment": value}


# ----------------------------------------------------------------------------- muxing

def mux(video_path, audio_path, out_path, *, start: float = 0.0, end: float | None = None,
        size: tuple[int, int] | None = None, crf: int = 23,
        progress: Progress | None = None) -> Path:
    """Write ``out_path``: the video's ``[start, end)`` re-encoded as H.264 with the audio
    file as its AAC sound track (trimmed to the range), atomically, fast-start MP4."""
    out_path = Path(out_path)
    for src in (video_path, audio_path):
        if Path(src).exists() and out_path.exists() and out_path.samefile(src):
            raise _err(out_path, "output would overwrite an input file")
    if out_path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise _err(out_path, f"preview must be .mp4 or .mov, not '{out_path.suffix}'")
    info = probe(video_path)
    if not info.has_video:
        raise _err(video_path, "no video stream")
    start, end = check_range(video_path, info.duration, start, end,
                             slack=1.0 / info.fps if info.fps else 0.0)
    ainfo = probe(audio_path)
    if not ainfo.audio_streams:
        raise _err(audio_path, "no audio stream")
    a0 = ainfo.audio_streams[0]
    rate = a0.sample_rate if a0.sample_rate in AAC_RATES else 48000
    a_len = min(ainfo.duration, end - start)
    audio = read_audio(audio_path, rate, mono=False, channels=min(2, a0.channels or 1),
                       end=a_len)
    dw, dh = size or (info.display_width, info.display_height)
    dw, dh = max(2, dw // 2 * 2), max(2, dh // 2 * 2)
    if info.vfr or not info.frame_rate:
        vtb, vrate = Fraction(1, 90000), Fraction(info.fps or 25).limit_denominator(1001)
    else:
        vrate = Fraction(info.frame_rate)
        vtb = 1 / vrate
    total = max(1, int(round((end - start) * (info.fps or 25))))
    layout = _layout_for(audio.shape[0])
    chunk = rate // 2
    with atomic_path(out_path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            vs = out.add_stream("libx264", rate=vrate)
            vs.width, vs.height, vs.pix_fmt = dw, dh, "yuv420p"
            vs.codec_context.time_base = vtb
            vs.codec_context.options = {"crf": str(crf), "preset": "veryfast"}
            ast = out.add_stream("aac", rate=rate, layout=layout)
            apos = 0

            def push_audio(until: float):
                nonlocal apos
                while apos < audio.shape[1] and apos / rate <= until:
                    piece = np.ascontiguousarray(audio[:, apos:apos + chunk])
                    fr = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
                    fr.sample_rate, fr.pts, fr.time_base = rate, apos, Fraction(1, rate)
                    for packet in ast.encode(fr):
                        out.mux(packet)
                    apos += piece.shape[1]

            last_pts = -1
            for i, (t, frame) in enumerate(iter_frames(video_path, start=start, end=end,
                                                        size=(dw, dh), info=info,
                                                        from_showing=True)):
                pts = max(last_pts + 1, 0 if i == 0 else int(round((t - start) / vtb)))
                last_pts = pts
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts, vf.time_base = pts, vtb
                for packet in vs.encode(vf):
                    out.mux(packet)
                push_audio(t - start)
                if progress is not None:
                    progress("mux", min(i + 1, total), total)
            for packet in vs.encode():
                out.mux(packet)
            push_audio(float("inf"))
            for packet in ast.encode():
                out.mux(packet)
        if progress is not None:
            progress("mux", total, total)
    return out_path
