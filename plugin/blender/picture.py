"""What the viewer sees in a span of a Blender scene, as the project's frame sources see it.

bpy-free, so it is tested without Blender.  The Blender side (:mod:`.strips`) reads the movie
strips into :class:`Piece` rows; this module turns a span of scene frames into either

* a plain video range (one strip, footage at the scene's rate): exactly what
  ``diffv2m generate VIDEO --start S --end E`` decodes, or
* an OpenTimelineIO timeline at the scene's rate (several strips, gaps, or footage at another
  rate), written to a file both engines read.  Blender plays one source frame per scene frame
  whatever the footage's own rate, so a 25 fps clip in a 24 fps scene plays 24/25 as fast: the
  clip carries a ``LinearTimeWarp`` of ``scene_fps / footage_fps`` and the project's timeline
  frame source retimes the decoded frames, so cuts and motion land where the viewer sees them.

Time: a strip's source frame shown at scene frame ``F`` is
``animation_offset_start + (F - frame_start)``; its seconds in the file are that over the
strip's own fps.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from diffv2m.errors import UserError

# Rates closer than this (relative) count as equal: Blender stores fps as a float.
RATE_TOLERANCE = 1e-4


def scene_rate(fps: int, fps_base: float) -> Fraction:
    """``render.fps / render.fps_base`` as an exact fraction (23.976 -> 24000/1001)."""
    return Fraction(int(fps)) / Fraction(fps_base).limit_denominator(10000)


def media_rate(fps: float) -> Fraction:
    """A movie strip's float fps as a fraction (23.976... -> 24000/1001, 25.0 -> 25)."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    for num, den in ((24000, 1001), (30000, 1001), (60000, 1001), (48000, 1001),
                     (120000, 1001)):
        if abs(fps - num / den) < 1e-3:
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(1001)


def same_rate(a: Fraction, b: Fraction) -> bool:
    return abs(float(a) - float(b)) <= RATE_TOLERANCE * float(b)


@dataclass(frozen=True)
class Piece:
    """Scene frames ``[start, end)`` show ``path`` from source frame ``source_frame`` on."""
    start: int
    end: int
    path: Path | None            # None: nothing (black)
    source_frame: int = 0
    fps: Fraction = Fraction(24)  # the footage's own rate
    name: str = ""

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Span:
    """Scene frames ``[start, end)`` at ``rate``, covered left to right by ``pieces``."""
    start: int
    end: int
    rate: Fraction
    pieces: tuple[Piece, ...]

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def seconds(self) -> float:
        return float(Fraction(self.frames) / self.rate)

    @property
    def retimed(self) -> bool:
        """Some footage plays at a rate other than its own (one source frame per scene frame)."""
        return any(p.path is not None and not same_rate(p.fps, self.rate) for p in self.pieces)

    def single_file(self) -> tuple[Path, float, float] | None:
        """``(path, start_s, end_s)`` when the span is one strip's footage at its own rate."""
        if len(self.pieces) != 1:
            return None
        p = self.pieces[0]
        if p.path is None or not same_rate(p.fps, self.rate):
            return None
        return (p.path, float(Fraction(p.source_frame) / p.fps),
                float(Fraction(p.source_frame + p.frames) / p.fps))

    def key(self) -> str:
        """A short content key of the span (names the timeline file both engines read)."""
        rows = [[p.start, p.end, str(p.path) if p.path else None, p.source_frame, str(p.fps)]
                for p in self.pieces]
        blob = json.dumps([self.start, self.end, str(self.rate), rows]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def cover(start: int, end: int, rate: Fraction, strips: list[Piece],
          channels: list[int] | None = None) -> Span:
    """The picture of scene frames ``[start, end)``: where strips overlap, the one on the
    higher channel wins (Blender draws higher channels on top).  ``strips`` are whole strips
    as :class:`Piece` (their source frame at their own ``start``); ``channels`` their
    channels (default: later in the list = higher)."""
    if not end > start:
        raise UserError(f"empty range: frames {start}-{end}")
    chans = channels if channels is not None else list(range(len(strips)))
    order = sorted(range(len(strips)), key=lambda i: -chans[i])
    bounds = sorted({start, end} | {min(max(b, start), end) for s in strips for b in (s.start, s.end)})
    pieces: list[Piece] = []
    for a, b in zip(bounds, bounds[1:]):
        top = next((strips[i] for i in order if strips[i].start <= a and b <= strips[i].end), None)
        if top is None:
            piece = Piece(a, b, None)
        else:
            piece = Piece(a, b, top.path, top.source_frame + (a - top.start), top.fps, top.name)
        prev = pieces[-1] if pieces else None
        if (prev is not None and prev.path == piece.path and prev.fps == piece.fps
                and prev.name == piece.name
                and (piece.path is None or prev.source_frame + prev.frames == piece.source_frame)):
            pieces[-1] = Piece(prev.start, b, prev.path, prev.source_frame, prev.fps, prev.name)
        else:
            pieces.append(piece)
    return Span(start, end, rate, tuple(pieces))


def to_timeline(span: Span, name: str = "Blender scene"):
    """An OTIO timeline of ``span`` at the scene's rate, starting at frame 0."""
    import opentimelineio as otio
    RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
    rate = float(span.rate)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for p in span.pieces:
        dur = RT(p.frames, rate)
        if p.path is None:
            track.append(otio.schema.Gap(source_range=TR(RT(0, rate), dur)))
            continue
        fps = float(p.fps)
        ref = otio.schema.ExternalReference(target_url=Path(p.path).resolve().as_uri())
        # The clip's length is its length in the scene; its start is in the footage's time.
        clip = otio.schema.Clip(name=p.name or Path(p.path).stem, media_reference=ref,
                                source_range=TR(RT(p.source_frame, fps), dur))
        if not same_rate(p.fps, span.rate):
            clip.effects.append(otio.schema.LinearTimeWarp(
                name="Blender: one source frame per scene frame",
                time_scalar=float(span.rate / p.fps)))
        track.append(clip)
    tl = otio.schema.Timeline(name=name, tracks=[track])
    tl.global_start_time = RT(0, rate)
    return tl


def write_timeline(span: Span, folder: str | Path, name: str = "Blender scene") -> Path:
    """Write :func:`to_timeline` as ``FOLDER/span-KEY.otio`` (temp file + rename)."""
    import opentimelineio as otio
    from diffv2m.atomic import atomic_path
    path = Path(folder) / f"span-{span.key()}.otio"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        otio.adapters.write_to_file(to_timeline(span, name), str(tmp), adapter_name="otio_json")
    return path
