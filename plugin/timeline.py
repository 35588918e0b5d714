"""Timeline side of the OpenTimelineIO bridge (torch-free): read, select, resolve.

* :func:`load_timeline` reads any format an installed OTIO adapter reads (.otio, .otioz,
  .otiod, EDL, FCP 7 XML, ...). EDLs carry no frame rate, so ``rate=`` is required for them.
* :func:`parse_time` reads an editor's time: timecode ``HH:MM:SS:FF`` (``;`` before the frames
  means drop-frame, 29.97/59.94 only), frames ``1234`` or ``1234f``, seconds ``12.5s``. At
  rates with no SMPTE timecode (90, 120 fps...) ``HH:MM:SS:FF`` counts whole frames at the
  rate: ``((HH * 60 + MM) * 60 + SS) * round(rate) + FF``.
* :func:`select` turns a range, a marker or a list of clip names into an
  :class:`opentimelineio.opentime.TimeRange` in the timeline's rate.
* :func:`resolve_segments` flattens the selection into the picture the viewer actually sees:
  a list of :class:`Segment`, each either a piece of one media file or black.

Coordinates. A *selection* is a TimeRange in the coordinate of ``timeline.tracks`` (the top
stack): 0 is the first frame of the timeline, whatever its ``global_start_time`` (record
timecode) is. Timecode strings given to :func:`select` are record timecode, so the
timeline's ``global_start_time`` is subtracted from them; frame and seconds strings (and
RationalTime values) are offsets from the timeline's first frame. Out points are exclusive.

Compositing rules used by :func:`resolve_segments`:

* Only video tracks count; disabled tracks and disabled clips are skipped (a disabled clip is
  transparent, like a gap).
* Tracks later in the stack are on top (OTIO's and every NLE's convention). A gap on an upper
  track is transparent: the track below shows through. Where no track has a picture the
  segment is black (``media_path`` None).
* A transition is resolved as a cut at its midpoint: the outgoing clip plays (into its
  handle, if needed) until ``cut + (out_offset - in_offset) / 2`` and the incoming clip
  from there. For a symmetric transition that is exactly the edit point. No blending is done.
* A Stack (or Track) nested in a track is resolved recursively as its own timeline over the
  range the outer track uses of it; its transparent parts show the outer tracks below.
* Clip source ranges are honoured; LinearTimeWarp effects (FreezeFrame included) on a clip
  remap time as ``source = source_start + time_scalar * elapsed`` (scalars of several warps
  multiply). Reverse (negative) speeds and time warps on nested stacks raise UserError.
* Media: found by :mod:`diffv2m.plugin.timeline_linker` (OTIO media linker
  ``diffv2m_relink``, run by :func:`load_timeline`; the resolver applies the same rules to
  timelines built in memory): ``file://`` URLs, POSIX and Windows paths (split on
  backslashes), relative to the timeline file's folder; with ``media_root`` a missing file
  is looked up under that folder by file name, then by clip name (clip-name-only EDLs).
  http(s) URLs are refused, never fetched. A MissingReference with no file of the clip's
  name under ``media_root`` raises UserError.
* Generators: a solid colour (OTIO ``SolidColor``, FCP 7 colour mattes, Kdenlive colour
  clips) shows its colour (``Segment.colour``); titles/text show :data:`TITLE_STAND_IN`
  (mid grey; the text is not drawn) with a note; bars, slugs and unknown generators are
  black, with a note. Notes are in ``resolve_segments(...).notes``; the session turns them,
  and a selection more than half black, into warnings.
* File time: a clip's source time is in the media's own timecode space. The source time of
  the file's first frame is, in order: the reference's ``available_range.start_time`` when
  the clip's source start lies inside that range (what FCP 7/FCPX XML, AAF, Kdenlive and
  OTIO files give); else the media's own embedded start timecode
  (:func:`diffv2m.media_timecode.start_timecode`: the video stream's or a QuickTime ``tmcd``
  track's ``timecode`` tag; what EDLs need); else 0, and where the source time is past an
  hour a note says the media has no start timecode (source time is then taken as time from
  the file's first frame).
* Adapter repairs on reading (the file itself is never written): FCP 7 XML
  ``<enabled>FALSE</enabled>`` on clips and tracks, ``timeremap`` speed (0 = freeze) and
  nested sequences (the released reader reads them as empty); FCPX ``enabled="0"`` and
  NTSC frame counts (the reader counts 1001/24000 s frames at 23 fps); Kdenlive hidden
  tracks (``hide``), speed changes (``timewarp`` producers, read back as media-less clips
  by the adapter), bin-clip markers outside the clip's used range and duplicated guides.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import opentimelineio as otio

from diffv2m.errors import UserError

from diffv2m.plugin.timeline_generators import TITLE_STAND_IN, generator_colour
from diffv2m.plugin.timeline_repairs import patched_source, repair

RationalTime = otio.opentime.RationalTime
TimeRange = otio.opentime.TimeRange

__all__ = [
    "Segment", "load_timeline", "parse_time", "format_time", "timeline_rate", "select",
    "resolve_segments", "list_markers", "adapter_output", "SegmentList", "TITLE_STAND_IN",
]

#: Set by the CLI's ``-v``: let adapters' banners, warnings and log lines through.
VERBOSE = False

_EDL_SUFFIXES = {".edl"}


# --------------------------------------------------------------------------------- reading

def adapter_for(path: Path, *, write: bool) -> str:
    """The installed OTIO adapter for ``path``'s suffix, or a one-line UserError listing the
    suffixes the installed adapters can read (or write)."""
    try:
        return otio.adapters.from_filepath(str(path)).name
    except Exception:
        known = sorted(otio.adapters.suffixes_with_defined_adapters(read=not write, write=write))
        raise UserError(f"{path}: unknown timeline format {path.suffix or '(no suffix)'!r}; "
                        f"installed OTIO adapters {'write' if write else 'read'}: "
                        f"{', '.join(known)}") from None


@contextlib.contextmanager
def adapter_output():
    """Keep OTIO adapters' banners (the Kdenlive adapter prints one on stdout), Python
    warnings and log records (the AAF adapter's) off stdout/stderr, unless :data:`VERBOSE`
    or ``DIFFV2M_VERBOSE=1``."""
    if VERBOSE or os.environ.get("DIFFV2M_VERBOSE", "") not in ("", "0"):
        yield
        return
    buf = io.StringIO()
    previous = logging.root.manager.disable
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def load_timeline(path: str | os.PathLike, *, rate: float | None = None,
                  adapter_name: str | None = None,
                  media_root: str | os.PathLike | None = None) -> otio.schema.Timeline:
    """Read a timeline with OTIO's adapters (the format is chosen from the suffix).

    ``rate`` is needed for EDLs (they carry no frame rate; 23.976 and 29.97 are accepted and
    mapped to 24000/1001 and 30000/1001); their first record-in becomes the timeline's
    ``global_start_time`` (see :func:`_normalise_edl_record_start`). A file holding a
    collection of timelines yields its first timeline.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such timeline file")
    if adapter_name is None:
        adapter_name = adapter_for(p, write=False)
    kwargs = {}
    if adapter_name == "cmx_3600" or p.suffix.lower() in _EDL_SUFFIXES:
        if rate is None:
            raise UserError(f"{p}: an EDL has no frame rate; give the rate (e.g. 24, 25, "
                            "23.976, 29.97)")
        kwargs["rate"] = normalise_rate(rate)
    from diffv2m.plugin.timeline_linker import LINKER_NAME
    if LINKER_NAME in otio.media_linker.available_media_linker_names():
        kwargs["media_linker_name"] = LINKER_NAME
        kwargs["media_linker_argument_map"] = {
            "timeline_dir": str(p.resolve().parent),
            "media_root": str(media_root) if media_root else ""}
    else:
        # Not registered (an install without the entry point): the resolver relinks with
        # the same rules when the selection is resolved.
        kwargs["media_linker_name"] = otio.media_linker.MediaLinkingPolicy.DoNotLinkMedia
    try:
        with adapter_output():
            patched = patched_source(p, adapter_name)
            if patched is not None:
                result = otio.adapters.read_from_string(patched, adapter_name=adapter_name,
                                                        **kwargs)
            else:
                result = otio.adapters.read_from_file(str(p), adapter_name=adapter_name,
                                                      **kwargs)
    except Exception as exc:  # adapters raise many kinds; all mean "cannot read this file"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: cannot read as {adapter_name}: {msg}") from None
    if isinstance(result, otio.schema.SerializableCollection):
        found = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if not found:
            raise UserError(f"{p}: the file holds no timeline")
        result = found[0]
    if isinstance(result, otio.schema.Timeline):
        if adapter_name == "cmx_3600":
            _normalise_edl_record_start(result)
        repair(result, p, adapter_name)
        return result
    raise UserError(f"{p}: the file holds a {type(result).__name__}, not a timeline")


def _normalise_edl_record_start(timeline: otio.schema.Timeline) -> None:
    """The cmx_3600 reader stores an EDL's first record-in as a *negative* track
    ``source_range.start_time`` (e.g. -86400 for 01:00:00:00 at 24 fps), which, read as OTIO
    semantics, trims every frame away. Move it where OTIO keeps record timecode: the
    timeline's ``global_start_time`` (the earliest record-in), with a gap in front of any
    track that starts later."""
    offsets = []
    for track in timeline.tracks:
        sr = track.source_range
        if sr is not None and sr.start_time.value < 0:
            offsets.append((track, -sr.start_time))
    if not offsets:
        return
    record_start = min(o for _, o in offsets)
    for track, record_in in offsets:
        track.source_range = None
        lead = record_in - record_start
        if lead.value > 0:
            track.insert(0, otio.schema.Gap(source_range=TimeRange(
                RationalTime(0, lead.rate), lead)))
    if timeline.global_start_time is None:
        timeline.global_start_time = record_start


def normalise_rate(rate: float) -> float:
    """Map near-SMPTE rates (23.976, 29.97, 59.94...) to their exact NTSC values."""
    rate = float(rate)
    if rate <= 0:
        raise UserError(f"frame rate {rate}: must be positive")
    nearest = RationalTime.nearest_valid_timecode_rate(rate)
    return nearest if abs(nearest - rate) < 0.01 else rate


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """The timeline's frame rate: its global start time's, else its first clip's, else 24."""
    if timeline.global_start_time is not None:
        return normalise_rate(timeline.global_start_time.rate)
    for clip in timeline.find_clips():
        rng = clip.source_range
        if rng is not None:
            return normalise_rate(rng.duration.rate)
    for track in timeline.tracks:
        if len(track):
            return normalise_rate(track.duration().rate)
    return 24.0


def _global_start(timeline: otio.schema.Timeline, rate: float) -> RationalTime:
    gst = timeline.global_start_time
    return RationalTime(0, rate) if gst is None else gst.rescaled_to(rate)


# ---------------------------------------------------------------------------------- times

_TC = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;.]\d{1,3}$")
_FRAMES = re.compile(r"^(\d+)f?$")
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)s$")


def parse_time(text: str | int | RationalTime, rate: float) -> RationalTime:
    """Parse an editor's time into a RationalTime at ``rate`` (whole frames).

    Timecode ``HH:MM:SS:FF`` (``HH:MM:SS;FF`` = drop-frame, only at 29.97/59.94), frames
    ``1234`` / ``1234f``, seconds ``12.5s`` (rounded to the nearest frame).
    """
    rate = normalise_rate(rate)
    if isinstance(text, RationalTime):
        return text.rescaled_to(rate).round()
    if isinstance(text, int):
        return RationalTime(text, rate)
    s = str(text).strip().lower()
    if _TC.match(s):
        if ";" in s or "." in s:
            if not _is_drop_frame_rate(rate):
                raise UserError(f"time {text!r}: drop-frame timecode (';') needs a 29.97 or "
                                f"59.94 fps timeline, this one is {_rate_str(rate)} fps")
            s = s.replace(".", ";")
        hh, mm, ss, ff = (int(x) for x in re.split(r"[:;]", s))
        nominal = round(rate)
        if mm > 59 or ss > 59 or ff >= nominal:
            raise UserError(f"time {text!r}: not a valid timecode at {_rate_str(rate)} fps")
        if not RationalTime.is_valid_timecode_rate(rate):
            # Non-SMPTE rates (90, 120, 48...): timecode counts whole frames at the rate.
            return RationalTime(((hh * 60 + mm) * 60 + ss) * nominal + ff, rate)
        try:
            return otio.opentime.from_timecode(s, rate)
        except Exception as exc:
            raise UserError(f"time {text!r}: {exc}") from None
    m = _FRAMES.match(s)
    if m:
        return RationalTime(int(m.group(1)), rate)
    m = _SECONDS.match(s)
    if m:
        return RationalTime.from_seconds(float(m.group(1)), rate).round()
    raise UserError(f"time {text!r}: expected timecode HH:MM:SS:FF (';' for drop-frame), "
                    "frames (1234 or 1234f) or seconds (12.5s)")


def format_time(t: RationalTime, rate: float | None = None) -> str:
    """Timecode for messages (drop-frame at 29.97/59.94)."""
    rate = normalise_rate(rate or t.rate)
    if not RationalTime.is_valid_timecode_rate(rate):
        n, f = int(round(t.rescaled_to(rate).value)), round(rate)
        if n < 0:
            return f"{t.to_seconds():.3f}s"
        ss, ff = divmod(n, f)
        return f"{ss // 3600:02d}:{ss // 60 % 60:02d}:{ss % 60:02d}:{ff:02d}"
    try:
        return otio.opentime.to_timecode(t.rescaled_to(rate), rate)
    except Exception:
        return f"{t.to_seconds():.3f}s"


def _is_drop_frame_rate(rate: float) -> bool:
    return any(abs(rate - r) < 1e-3 for r in (30000 / 1001, 60000 / 1001))


def _rate_str(rate: float) -> str:
    return f"{rate:.3f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------ selection

def _item_range_in_timeline(item, timeline) -> TimeRange:
    """The item's range in the top stack's coordinate (works for nested items too)."""
    rng = item.range_in_parent()
    parent = item.parent()
    if parent is None or parent is timeline.tracks:
        return rng
    return parent.transformed_time_range(rng, timeline.tracks)


def _tracks_matching(timeline, track) -> list:
    if track is None:
        return list(timeline.tracks)
    if isinstance(track, int) or (isinstance(track, str) and track.isdigit()):
        idx = int(track)
        vids = timeline.video_tracks()
        if not 1 <= idx <= len(vids):
            raise UserError(f"track {idx}: the timeline has {len(vids)} video track(s) "
                            "(numbered from 1, bottom to top)")
        return [vids[idx - 1]]
    found = [t for t in timeline.tracks if t.name == track]
    if not found:
        names = ", ".join(repr(t.name) for t in timeline.tracks) or "none"
        raise UserError(f"track {track!r}: no such track (tracks: {names})")
    return found


def _markers(timeline) -> list[tuple[str, TimeRange, TimeRange | None]]:
    """(name, range, range of the clip it is attached to or None), timeline coordinates,
    in time order. The same name over the same range is listed once (the Kdenlive adapter
    reads guides twice and repeats a bin clip's markers on every use of the clip)."""
    out, seen = [], set()
    items = [timeline.tracks] + list(timeline.tracks.find_children())
    for item in items:
        for m in getattr(item, "markers", []):
            rng = m.marked_range
            owner = None
            if item is not timeline.tracks:
                try:
                    rng = item.transformed_time_range(rng, timeline.tracks)
                except Exception:
                    continue
                if isinstance(item, otio.schema.Clip):
                    # A clip marker marks source time: it shows only where the clip shows
                    # that frame (Kdenlive's adapter copies a bin clip's markers onto every
                    # use of the clip, used or not).
                    owner = _visible_range(item, timeline)
                    if owner is None or not (owner.start_time <= rng.start_time
                                             < owner.end_time_exclusive()):
                        continue
            key = (m.name, round(rng.start_time.to_seconds(), 6),
                   round(rng.duration.to_seconds(), 6))
            if key in seen:
                continue
            seen.add(key)
            out.append((m.name, rng, owner))
    out.sort(key=lambda nm: nm[1].start_time.to_seconds())
    return out


def list_markers(timeline) -> list[tuple[str, TimeRange]]:
    """Every marker of the timeline (stack, tracks, clips, nested), in timeline coordinates,
    each (name, range) once."""
    return [(n, r) for n, r, _ in _markers(timeline)]


def _clip_under(timeline, t: RationalTime) -> TimeRange | None:
    """The range of the clip the viewer sees at ``t``: top-most enabled video track first."""
    for track in reversed(timeline.video_tracks()):
        if not track.enabled:
            continue
        for c in track.find_clips():
            if not c.enabled:
                continue
            r = _visible_range(c, timeline)
            if r is not None and r.start_time <= t < r.end_time_exclusive():
                return r
    return None


def _visible_range(item, timeline) -> TimeRange | None:
    """The part of ``item`` that shows in the top stack's coordinate (a nested clip clipped
    to the trims of the stacks/tracks it sits in), or None if none of it shows."""
    try:
        rng = item.range_in_parent()
        parent = item.parent()
        while parent is not None and parent is not timeline.tracks:
            trimmed = parent.trimmed_range()
            a = max(rng.start_time, trimmed.start_time)
            b = min(rng.end_time_exclusive(), trimmed.end_time_exclusive())
            if not a < b:
                return None
            outer = parent.range_in_parent()
            shift = outer.start_time - trimmed.start_time
            rng = TimeRange.range_from_start_end_time(a + shift, b + shift)
            parent = parent.parent()
        return rng
    except Exception:
        return None


def select(timeline: otio.schema.Timeline, *, range: Sequence | None = None,
           marker: str | None = None, clips: Iterable[str] | None = None,
           track: str | int | None = None, name: str = "",
           duration: str | RationalTime | None = None) -> TimeRange:
    """Resolve an editor's selection into a TimeRange (timeline coordinate, timeline rate).

    Exactly one of ``range=(in, out)`` (strings for :func:`parse_time` or RationalTime; out
    exclusive; timecode strings are record timecode), ``marker=NAME`` or
    ``clips=[names]`` (see below). Markers: with ``duration`` (frames ``48``, seconds ``8s``
    or timecode ``00:00:08:00``, a length) the selection is ``duration`` from the marker's
    start; else a marker longer than one frame selects its own range; a point or one-frame
    marker (what Avid, FCPX and Resolve usually write) selects from its start up to the next
    marker or the end of the clip under it (the clip it is attached to; for a timeline
    marker the clip on the top-most enabled video track there), whichever comes first, or
    the timeline's end where no clip is under it. Or
    ``clips=[names]`` (from the first clip's start to the last clip's end, optionally only on
    ``track``). None of them selects the whole timeline (or the whole of ``track``).
    ``name`` is used in messages (the timeline file).
    """
    label = name or timeline.name or "timeline"
    rate = timeline_rate(timeline)
    total = timeline.tracks.duration().rescaled_to(rate)
    zero = RationalTime(0, rate)
    given = [x is not None for x in (range, marker, clips)]
    if sum(given) > 1:
        raise UserError(f"{label}: give only one of a range, a marker or clips")
    if duration is not None and marker is None:
        raise UserError(f"{label}: a duration goes with a marker (--marker NAME --duration T)")

    if range is not None:
        if len(range) != 2:
            raise UserError(f"{label}: a range needs an in and an out point")
        ends = []
        for v in range:
            t = parse_time(v, rate)
            if isinstance(v, str) and _TC.match(v.strip()):
                gst = _global_start(timeline, rate)
                if t < gst:
                    raise UserError(f"{label}: {v} is before the timeline's start "
                                    f"{format_time(gst, rate)}")
                t = t - gst
            ends.append(t.rescaled_to(rate))
        sel = TimeRange.range_from_start_end_time(ends[0], ends[1]) if ends[1] > ends[0] \
            else TimeRange(ends[0], RationalTime(0, rate))
        what = f"range {range[0]}-{range[1]}"
    elif marker is not None:
        marks = _markers(timeline)
        hits = [(r, owner) for n, r, owner in marks if n == marker]
        if not hits:
            names = ", ".join(sorted({repr(n) for n, _, _ in marks})) or "none"
            raise UserError(f"{label}: no marker named {marker!r} (markers: {names})")
        if len(hits) > 1:
            raise UserError(f"{label}: {len(hits)} markers are named {marker!r}; rename one")
        hit, owner = hits[0]
        start = hit.start_time.rescaled_to(rate).round()
        one_frame = RationalTime(1, rate)
        if duration is not None:
            length = parse_time(duration, rate)
            sel = TimeRange(start, length)
        elif hit.duration.rescaled_to(rate).round() > one_frame:
            sel = hit
        else:
            ends = [r.start_time for _, r, _ in marks if r.start_time.rescaled_to(rate) > start]
            under = owner if owner is not None else _clip_under(timeline, start)
            if under is not None and under.end_time_exclusive() > start:
                ends.append(under.end_time_exclusive())
            sel = TimeRange.range_from_start_end_time(
                start, min(e.rescaled_to(rate) for e in ends) if ends else total)
        sel = TimeRange(sel.start_time.rescaled_to(rate).round(),
                        sel.duration.rescaled_to(rate).round())
        what = f"marker {marker!r}"
    elif clips is not None:
        wanted = list(clips)
        if not wanted:
            raise UserError(f"{label}: no clip names given")
        tracks = _tracks_matching(timeline, track)
        found: dict[str, list[TimeRange]] = {}
        for tr in tracks:
            for c in tr.find_clips():
                if c.name in wanted:
                    found.setdefault(c.name, []).append(_item_range_in_timeline(c, timeline))
        missing = [n for n in wanted if n not in found]
        if missing:
            raise UserError(f"{label}: no clip named {', '.join(map(repr, missing))}"
                            + (f" on track {track!r}" if track is not None else ""))
        rngs = [r for rs in found.values() for r in rs]
        start = min(r.start_time for r in rngs)
        end = max(r.end_time_exclusive() for r in rngs)
        sel = TimeRange.range_from_start_end_time(start.rescaled_to(rate).round(),
                                                  end.rescaled_to(rate).round())
        what = "clips " + ", ".join(map(repr, wanted))
    elif track is not None:
        tr = _tracks_matching(timeline, track)[0]
        sel = TimeRange(zero, tr.duration().rescaled_to(rate))
        what = f"track {track!r}"
    else:
        sel = TimeRange(zero, total)
        what = "the timeline"

    sel = TimeRange(sel.start_time.rescaled_to(rate), sel.duration.rescaled_to(rate))
    if sel.duration.value <= 0:
        raise UserError(f"{label}: {what} selects nothing (empty selection)")
    if sel.start_time < zero:
        raise UserError(f"{label}: {what} starts before the timeline")
    if sel.end_time_exclusive() > total:
        gst = _global_start(timeline, rate)
        raise UserError(f"{label}: {what} ends at {format_time(sel.end_time_exclusive() + gst, rate)}"
                        f", past the timeline's end {format_time(total + gst, rate)}")
    return sel


# ------------------------------------------------------------------------------ resolving

@dataclass(frozen=True)
class Segment:
    """One piece of the picture: ``duration`` of ``media_path`` (None = black) from
    ``source_start`` on, played at ``speed`` (1 = normal, 2 = twice as fast, 0 = freeze).

    ``timeline_start`` and ``duration`` are RationalTime at the timeline's rate (timeline
    coordinate); ``source_start`` is a RationalTime in the media reference's own time
    (``None`` for black). The ``*_seconds`` properties are what a decoder needs:
    ``file_start_seconds`` is the time in the media file (its available range's start
    subtracted).
    """

    timeline_start: RationalTime
    duration: RationalTime
    media_path: Path | None
    source_start: RationalTime | None
    speed: float = 1.0
    clip_name: str = ""
    media_start: RationalTime | None = None  # source time of the file's first frame
    colour: tuple[int, int, int] | None = None  # generator colour (media_path None)

    @property
    def start_seconds(self) -> float:
        return self.timeline_start.to_seconds()

    @property
    def end_time(self) -> RationalTime:
        return self.timeline_start + self.duration

    @property
    def duration_seconds(self) -> float:
        return self.duration.to_seconds()

    @property
    def source_start_seconds(self) -> float:
        """Seconds into the media file where the segment's first frame is."""
        if self.source_start is None:
            return 0.0
        t = self.source_start
        if self.media_start is not None:
            t = t - self.media_start
        return t.to_seconds()

    file_start_seconds = source_start_seconds

    @property
    def is_black(self) -> bool:
        return self.media_path is None and self.colour is None


class _Resolver:
    def __init__(self, timeline, timeline_path, media_root, rate):
        self.timeline = timeline
        self.timeline_path = Path(timeline_path) if timeline_path else None
        self.base = self.timeline_path.parent if self.timeline_path else Path.cwd()
        self.media_root = Path(media_root) if media_root else None
        self.rate = rate
        self.label = str(self.timeline_path) if self.timeline_path else (timeline.name or "timeline")
        self.notes: list[str] = []

    # Pieces: list of (start, end, payload) in the *outer* coordinate of the call,
    # payload = Segment-template dict or None (transparent).

    def stack(self, stack, start: RationalTime, end: RationalTime, top: bool = False):
        tracks = [t for t in stack if isinstance(t, (otio.schema.Track, otio.schema.Stack))
                  and getattr(t, "kind", otio.schema.TrackKind.Video) == otio.schema.TrackKind.Video
                  and t.enabled]
        holes = [(start, end)]
        pieces = []
        for track in reversed(tracks):  # top-most first
            offset = track.trimmed_range().start_time  # stack time 0 -> track internal offset
            tlen = track.trimmed_range().duration
            new_holes = []
            for hs, he in holes:
                a, b = max(hs, RationalTime(0, self.rate)), min(he, tlen)
                if not a < b:
                    new_holes.append((hs, he))
                    continue
                if hs < a:
                    new_holes.append((hs, a))
                if b < he:
                    new_holes.append((b, he))
                inner = (self.track(track, a + offset, b + offset) if isinstance(track, otio.schema.Track)
                         else self.stack(track, a + offset, b + offset))
                for ps, pe, payload in inner:
                    if payload is None:
                        new_holes.append((ps - offset, pe - offset))
                    else:
                        pieces.append((ps - offset, pe - offset, payload))
            holes = new_holes
            if not holes:
                break
        pieces += [(hs, he, None) for hs, he in holes]
        pieces.sort(key=lambda p: p[0].to_seconds())
        return pieces

    def track(self, track, start: RationalTime, end: RationalTime):
        children = list(track)
        # Layout: (layout_start, effective_start, effective_end, child) for non-transitions.
        laid = []
        ranges = track.range_of_all_children() if children else {}
        for i, child in enumerate(children):
            if isinstance(child, otio.schema.Transition):
                continue
            r = ranges[child]
            laid.append([r.start_time, r.start_time, r.end_time_exclusive(), child, i])
        pos = {entry[4]: k for k, entry in enumerate(laid)}
        for i, child in enumerate(children):
            if not isinstance(child, otio.schema.Transition):
                continue
            diff = (child.out_offset - child.in_offset).rescaled_to(self.rate)
            delta = RationalTime(diff.value / 2, self.rate).round()
            if i - 1 in pos:
                laid[pos[i - 1]][2] = laid[pos[i - 1]][2] + delta
            if i + 1 in pos:
                laid[pos[i + 1]][1] = laid[pos[i + 1]][1] + delta
        pieces = []
        covered_to = start
        for layout_start, es, ee, child, _ in laid:
            a, b = max(es, start), min(ee, end)
            if not a < b:
                continue
            if covered_to < a:
                pieces.append((covered_to, a, None))
            covered_to = max(covered_to, b)
            pieces += self.item(child, layout_start, a, b)
        if covered_to < end:
            pieces.append((covered_to, end, None))
        return pieces

    def item(self, child, layout_start, a, b):
        """Pieces of ``child`` placed at ``layout_start`` (track time) over [a, b)."""
        if isinstance(child, otio.schema.Gap) or not child.enabled:
            return [(a, b, None)]
        trimmed = child.trimmed_range()
        to_inner = trimmed.start_time - layout_start
        if isinstance(child, (otio.schema.Stack, otio.schema.Track)):
            if any(isinstance(e, otio.schema.TimeEffect) for e in child.effects):
                raise UserError(f"{self.label}: time warp on nested {child.schema_name()} "
                                f"{child.name!r} is not supported; apply it to its clips")
            inner = (self.stack(child, a + to_inner, b + to_inner) if isinstance(child, otio.schema.Stack)
                     else self.track(child, a + to_inner, b + to_inner))
            return [(ps - to_inner, pe - to_inner, payload) for ps, pe, payload in inner]
        if isinstance(child, otio.schema.Clip):
            return [(a, b, self.clip(child, a + to_inner, trimmed.start_time))]
        # Unknown composable (e.g. a custom schema): treat as transparent.
        return [(a, b, None)]

    def clip(self, clip, inner_start: RationalTime, source_start: RationalTime) -> dict:
        speed = 1.0
        for e in clip.effects:
            if isinstance(e, otio.schema.LinearTimeWarp):
                speed *= float(e.time_scalar)
        if speed < 0:
            raise UserError(f"{self.label}: clip {clip.name!r} plays in reverse "
                            f"(time_scalar {speed}); reverse playback is not supported")
        ref = clip.media_reference
        if isinstance(ref, otio.schema.GeneratorReference):
            colour, note = generator_colour(ref, clip.name)
            if note:
                self.note(note)
            return {"media_path": None, "clip_name": clip.name, "colour": colour}
        path = self.media_path(clip, ref)
        media_start = self.media_start(clip, ref, path, source_start)
        # source = source_start + speed * elapsed (elapsed since the clip's source start)
        elapsed = inner_start - source_start
        src = source_start + RationalTime(elapsed.value * speed, elapsed.rate) if speed != 1.0 \
            else inner_start
        return {"media_path": path, "clip_name": clip.name, "speed": speed,
                "source_start": src, "media_start": media_start}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def media_start(self, clip, ref, path: Path, source_start: RationalTime):
        """The source time of the file's first frame (see the module docstring)."""
        avail = ref.available_range
        if avail is not None and _within(source_start, avail):
            return avail.start_time
        embedded = _embedded_start(path)
        if avail is not None and embedded is None:
            return avail.start_time
        if embedded is not None:
            return embedded
        if source_start.to_seconds() >= 3600 - 1e-6:
            self.note(f"clip {clip.name!r}: {path.name} has no start timecode; its source "
                      f"time {format_time(source_start)} is read as time from the file's "
                      "first frame")
        return None

    def media_path(self, clip, ref) -> Path:
        from diffv2m.plugin.timeline_linker import find_media
        if ref is None or isinstance(ref, otio.schema.MissingReference):
            if self.media_root is not None:
                found, _ = find_media(None, clip_name=clip.name, ref_name=getattr(ref, "name", "") or "",
                                      media_root=self.media_root)
                if found is not None:
                    return found
                raise UserError(f"{self.label}: clip {clip.name!r} has no media path and no "
                                f"file named {clip.name!r} is under {self.media_root}")
            raise UserError(f"{self.label}: clip {clip.name!r} has no media (missing reference;"
                            " relink by clip name with a media root folder)")
        if not isinstance(ref, otio.schema.ExternalReference):
            raise UserError(f"{self.label}: clip {clip.name!r}: media reference "
                            f"{ref.schema_name()} is not supported (use a file reference)")
        url = ref.target_url or ""
        if not url.strip():
            raise UserError(f"{self.label}: clip {clip.name!r} has an empty media path")
        if self.media_root is not None and not self.media_root.is_dir():
            raise UserError(f"{self.media_root}: media root is not a folder")
        try:
            found, named = find_media(url, clip_name=clip.name, ref_name=ref.name or "",
                                      timeline_dir=self.base, media_root=self.media_root)
        except ValueError as exc:
            if "remote URL" in str(exc):
                raise UserError(f"{self.label}: clip {clip.name!r} refers to a remote URL "
                                f"{url}; download it and relink to a local file (remote media "
                                "is never fetched)") from None
            raise UserError(f"{self.label}: clip {clip.name!r}: {exc}") from None
        if found is not None:
            return found
        if self.media_root is not None:
            raise UserError(f"{self.label}: clip {clip.name!r}: media {named} not found, nor "
                            f"{_name_of(named)!r} or {clip.name!r} under {self.media_root}")
        raise UserError(f"{self.label}: clip {clip.name!r}: media not found: {named} "
                        "(relink with a media root folder)")


def _name_of(p) -> str:
    from pathlib import PureWindowsPath
    return PureWindowsPath(str(p)).name if "\\" in str(p) else Path(str(p)).name


def _within(t: RationalTime, rng: TimeRange) -> bool:
    return rng.start_time <= t.rescaled_to(rng.start_time.rate) < rng.end_time_exclusive()


_START_TC: dict[tuple[str, int, int], RationalTime | None] = {}


def _embedded_start(path: Path) -> RationalTime | None:
    """The media file's own start timecode as a RationalTime (cached per file state)."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _START_TC:
        from diffv2m.media_timecode import start_timecode
        try:
            found = start_timecode(path)
        except UserError:
            found = None
        value = None
        if found is not None:
            text, rate = found
            r = normalise_rate(float(rate)) if rate else 24.0
            try:
                value = parse_time(text, r)
            except UserError:
                value = None
        _START_TC[key] = value
    return _START_TC[key]


class SegmentList(list):
    """The segments of :func:`resolve_segments`, plus ``notes``: what the viewer would see
    differently (title stand-ins, unreadable generators, media with no start timecode)."""

    notes: list[str]

    def black_fraction(self) -> float:
        """Share of the selection with no picture (gaps, disabled clips, black generators)."""
        total = sum(s.duration.to_seconds() for s in self) or 1.0
        return sum(s.duration.to_seconds() for s in self
                   if s.media_path is None and (s.colour is None or s.colour == (0, 0, 0))
                   ) / total


def resolve_segments(timeline: otio.schema.Timeline, selection: TimeRange, *,
                     timeline_path: str | os.PathLike | None = None,
                     media_root: str | os.PathLike | None = None) -> list[Segment]:
    """The picture the viewer sees over ``selection``, as contiguous segments.

    Segments tile the selection in order; their ``timeline_start`` / ``duration`` are at the
    timeline's rate. Adjacent black pieces are merged, and so are adjacent pieces that
    continue the same file at the same speed. See the module docstring for the rules.
    """
    rate = timeline_rate(timeline)
    start = selection.start_time.rescaled_to(rate)
    end = selection.end_time_exclusive().rescaled_to(rate)
    res = _Resolver(timeline, timeline_path, media_root, rate)
    tracks_offset = timeline.tracks.trimmed_range().start_time if timeline.tracks.source_range else None
    if tracks_offset is not None:
        pieces = [(ps - tracks_offset, pe - tracks_offset, p)
                  for ps, pe, p in res.stack(timeline.tracks, start + tracks_offset, end + tracks_offset)]
    else:
        pieces = res.stack(timeline.tracks, start, end)
    segs = SegmentList()
    segs.notes = res.notes
    for ps, pe, payload in pieces:
        ps, pe = ps.rescaled_to(rate), pe.rescaled_to(rate)
        if not ps < pe:
            continue
        if payload is None or payload.get("media_path") is None:
            colour = payload.get("colour") if payload else None
            seg = Segment(ps, pe - ps, None, None, 1.0,
                          payload.get("clip_name", "") if payload else "",
                          colour=None if colour == (0, 0, 0) else colour)
        else:
            seg = Segment(ps, pe - ps, payload["media_path"], payload["source_start"],
                          payload["speed"], payload["clip_name"], payload["media_start"])
        if segs and _continues(segs[-1], seg):
            prev = segs[-1]
            segs[-1] = Segment(prev.timeline_start, prev.duration + seg.duration, prev.media_path,
                               prev.source_start, prev.speed, prev.clip_name, prev.media_start,
                               prev.colour)
        else:
            segs.append(seg)
    return segs


def _continues(prev: Segment, seg: Segment) -> bool:
    if prev.media_path is None or seg.media_path is None:
        return prev.media_path is None and seg.media_path is None and prev.colour == seg.colour
    if prev.media_path != seg.media_path or prev.speed != seg.speed:
        return False
    if prev.media_start != seg.media_start:
        return False
    expect = prev.source_start.to_seconds() + prev.speed * prev.duration.to_seconds()
    return abs(expect - seg.source_start.to_seconds()) < 1e-6
