"""Repairs for what the released OTIO adapters lose or get wrong when reading (torch-free).

Used by :func:`diffv2m.plugin.timeline.load_timeline`; the timeline file is never written.

* :func:`patched_source`: a corrected in-memory copy of the file for the adapter to read,
  where the adapter's reader cannot be helped afterwards (FCP 7 nested sequences read as
  empty, FCPX frame counts truncated at NTSC rates, Kdenlive ``timewarp`` producers read as
  clips with no media), or None when nothing needs correcting.
* :func:`repair`: after reading, flags read from the file itself (FCP 7
  ``<enabled>FALSE</enabled>`` and ``timeremap``, FCPX ``enabled="0"``, NTSC rates and the
  sequence's ``tcStart``, Kdenlive hidden tracks and speed, AAF audio track names).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

RationalTime = otio.opentime.RationalTime
TimeRange = otio.opentime.TimeRange

__all__ = ["patched_source", "repair", "fcpx_seconds"]


def _parse(path: Path) -> ET.ElementTree | None:
    """The XML of ``path``, or None when it does not parse (the adapter's own error stands)."""
    try:
        return ET.parse(str(path))
    except ET.ParseError:
        return None


def patched_source(path: Path, adapter_name: str) -> str | None:
    """The file's text as the adapter should read it, or None to read the file itself."""
    fix = {"fcp_xml": _fcp_xml_nested_fix, "fcpx_xml": _fcpx_xml_frames_fix,
           "kdenlive": _kdenlive_timewarp_fix}.get(adapter_name)
    return fix(path) if fix else None


def repair(timeline: otio.schema.Timeline, path: Path, adapter_name: str) -> None:
    """Restore, from the file itself, what ``adapter_name``'s reader dropped."""
    fix = {"fcp_xml": _fcp_xml_flags, "fcpx_xml": _fcpx_xml_flags,
           "kdenlive": _kdenlive_flags, "AAF": _aaf_track_names}.get(adapter_name)
    if fix:
        fix(timeline, path)


def _fcp_xml_flags(timeline: otio.schema.Timeline, path: Path) -> None:
    """What the released fcp_xml reader loses, read from the XML itself: ``<enabled>FALSE``
    on clipitems/generatoritems (matched by their ``id``, which the reader keeps in
    ``metadata["fcp_xml"]["@id"]``) and on the sequence's top-level video/audio tracks
    (matched in document order), and track names (``<name>`` in a ``<track>``, which this
    bridge writes)."""
    tree = _parse(path)
    if tree is None:
        return
    root = tree.getroot()
    items = {el.get("id"): el for el in root.iter()
             if el.tag in ("clipitem", "generatoritem") and el.get("id")}
    for item in timeline.find_children():
        md = item.metadata.get("fcp_xml") if hasattr(item, "metadata") else None
        el = items.get(md.get("@id")) if hasattr(md, "get") else None
        if el is None:
            continue
        if (el.findtext("enabled") or "").strip().upper() == "FALSE":
            item.enabled = False
        speed = _fcp_time_remap(el)
        if speed is not None and isinstance(item, otio.schema.Clip) and not any(
                isinstance(e, otio.schema.TimeEffect) for e in item.effects):
            item.effects.append(otio.schema.FreezeFrame() if speed == 0 else
                                otio.schema.LinearTimeWarp(time_scalar=speed))
    seq = root.find(".//sequence")
    if seq is None:
        return
    for kind, tracks in (("video", timeline.video_tracks()), ("audio", timeline.audio_tracks())):
        els = seq.findall(f"./media/{kind}/track")
        if len(els) != len(tracks):
            continue
        for el, track in zip(els, tracks):
            if (el.findtext("enabled") or "").strip().upper() == "FALSE":
                track.enabled = False
            name = (el.findtext("name") or "").strip()
            if name and not track.name:
                track.name = name


def _fcp_xml_nested_fix(path: Path) -> str | None:
    """The released fcp_xml reader looks for a nested sequence's ``<video>``/``<audio>``
    directly under ``<sequence>`` instead of under its ``<media>``, so nested sequences read
    as empty stacks. Returns a copy of the XML (in memory; the file is never touched) with
    those elements also placed where the reader looks, or None when there is nothing nested."""
    tree = _parse(path)
    if tree is None:
        return None
    changed = False
    for item in tree.getroot().iter("clipitem"):
        for seq in item.findall("sequence"):
            media = seq.find("media")
            if media is None or seq.find("video") is not None or seq.find("audio") is not None:
                continue
            for kind in media:
                if kind.tag in ("video", "audio"):
                    seq.append(kind)
                    changed = True
            seq.remove(media)
    return ET.tostring(tree.getroot(), encoding="unicode") if changed else None


def _fcp_time_remap(el) -> float | None:
    """A clipitem's constant speed from its ``timeremap`` filter (Premiere/FCP 7 write
    ``<parameterid>speed</parameterid><value>200</value>`` in percent, ``reverse`` TRUE for
    backwards), or None. The released fcp_xml reader ignores it."""
    for eff in el.iter("effect"):
        if (eff.findtext("effectid") or "").strip().lower() != "timeremap":
            continue
        speed, reverse = None, False
        for par in eff.iter("parameter"):
            pid = (par.findtext("parameterid") or "").strip().lower()
            val = (par.findtext("value") or "").strip()
            if pid == "speed":
                try:
                    speed = float(val) / 100.0
                except ValueError:
                    speed = None
            elif pid == "reverse":
                reverse = val.upper() == "TRUE"
        if speed is not None:
            return -speed if reverse else speed
    return None


def _fcpx_xml_flags(timeline: otio.schema.Timeline, path: Path) -> None:
    """FCPX's ``enabled="0"`` on a clip (the fcpx_xml reader ignores it), matched by name,
    source start and duration."""
    tree = _parse(path)
    if tree is None:
        return
    root = tree.getroot()
    _fcpx_rates(timeline, root)
    _fcpx_record_start(timeline, root)
    off = set()
    for el in root.iter():
        if el.get("enabled") == "0" and el.get("name") is not None:
            off.add((el.get("name"), fcpx_seconds(el.get("start")),
                     fcpx_seconds(el.get("duration"))))
    if not off:
        return
    for c in timeline.find_clips():
        sr = c.source_range
        if sr is None:
            continue
        key = (c.name, round(sr.start_time.to_seconds(), 6), round(sr.duration.to_seconds(), 6))
        if key in off:
            c.enabled = False


_FCPX_TIME_ATTRS = ("offset", "duration", "start", "tcStart")
_FCPX_NUDGE = Fraction(1, 10**7)          # seconds; far below a frame at any rate


def _fcpx_xml_frames_fix(path: Path) -> str | None:
    """A copy of an FCPX XML (in memory; the file is never touched) that the fcpx_xml reader
    counts right. That reader turns times into frames with ``int(seconds * int(fps))``, so at
    NTSC rates (frameDuration 1001/24000s) it counts at 23 fps and truncates. Where every
    format of the file is NTSC, times are scaled by 1000/1001 and each frameDuration becomes
    ``1/N`` s, so the reader counts exact frames at N (relabelled N*1000/1001 afterwards by
    :func:`_fcpx_rates`); every time is also nudged up by 0.1 us against float truncation.
    None if the file cannot be parsed."""
    tree = _parse(path)
    if tree is None:
        return None
    root = tree.getroot()
    rates = []
    for fmt in root.iter("format"):
        try:
            rates.append(1 / Fraction((fmt.get("frameDuration") or "").rstrip("s")))
        except (ValueError, ZeroDivisionError):
            pass
    ntsc = bool(rates) and all((r * 1001 / 1000).denominator == 1 and r.denominator != 1
                               for r in rates)
    scale = Fraction(1000, 1001) if ntsc else Fraction(1)
    if ntsc:
        for fmt in root.iter("format"):
            r = 1 / Fraction((fmt.get("frameDuration") or "").rstrip("s"))
            fmt.set("frameDuration", f"1/{int(r * 1001 / 1000)}s")
    for el in root.iter():
        for attr in _FCPX_TIME_ATTRS:
            v = el.get(attr)
            if not v or not v.endswith("s") or v == "0s":
                continue
            try:
                t = Fraction(v[:-1])
            except (ValueError, ZeroDivisionError):
                continue
            t = t * scale + _FCPX_NUDGE
            el.set(attr, f"{t.numerator}/{t.denominator}s")
    return ET.tostring(root, encoding="unicode")


def _fcpx_record_start(timeline: otio.schema.Timeline, root) -> None:
    """The sequence's ``tcStart`` (its record timecode start; the reader ignores it) as the
    timeline's ``global_start_time``, in frames at the sequence's format rate."""
    if timeline.global_start_time is not None:
        return
    seq = root.find(".//project/sequence")
    if seq is None or not seq.get("tcStart"):
        return
    formats = {f.get("id"): f for f in root.iter("format")}
    fmt = formats.get(seq.get("format") or "")
    try:
        start = Fraction(seq.get("tcStart").rstrip("s"))
        rate = 1 / Fraction((fmt.get("frameDuration") or "").rstrip("s"))
    except (AttributeError, ValueError, ZeroDivisionError):
        return
    timeline.global_start_time = RationalTime(round(start * rate), float(rate))


def _fcpx_rates(timeline: otio.schema.Timeline, root) -> None:
    """The fcpx_xml reader counts frames at the true rate (``frameDuration`` 1001/24000s)
    but labels them with the rate truncated to an integer (23): relabel them 24000/1001."""
    true = {}
    for fmt in root.iter("format"):
        fd = (fmt.get("frameDuration") or "").rstrip("s")
        try:
            r = 1 / Fraction(fd)
        except (ValueError, ZeroDivisionError):
            continue
        if r.denominator != 1:
            true[round(r)] = float(r)
    if not true:
        return

    def fix(t):
        if t is None:
            return None
        r = true.get(int(t.rate)) if float(t.rate).is_integer() else None
        return RationalTime(t.value, r) if r else t

    def fix_range(rng):
        return None if rng is None else TimeRange(fix(rng.start_time), fix(rng.duration))

    timeline.global_start_time = fix(timeline.global_start_time)
    for item in [timeline.tracks] + list(timeline.tracks.find_children()):
        if getattr(item, "source_range", None) is not None:
            item.source_range = fix_range(item.source_range)
        if isinstance(item, otio.schema.Transition):
            item.in_offset, item.out_offset = fix(item.in_offset), fix(item.out_offset)
        if isinstance(item, otio.schema.Clip):
            for ref in item.media_references().values():
                ref.available_range = fix_range(ref.available_range)
        for m in getattr(item, "markers", []):
            m.marked_range = fix_range(m.marked_range)


def fcpx_seconds(text: str | None) -> float | None:
    if not text:
        return 0.0 if text is None else None
    t = text.strip().rstrip("s")
    try:
        return round(float(Fraction(t)), 6)
    except (ValueError, ZeroDivisionError):
        return None


_WARP_TAG = "\u241fdiffv2m-speed="


def _kdenlive_timewarp_fix(path: Path) -> str | None:
    """The Kdenlive adapter writes speed changes as MLT ``timewarp`` producers but reads them
    back as clips with no media. Returns a copy of the project (in memory) where each
    timewarp producer is the plain file producer it wraps, its speed carried in the clip name
    (undone by :func:`_kdenlive_flags`), or None when there is none."""
    tree = _parse(path)
    if tree is None:
        return None
    changed = False
    for prod in tree.getroot().iter("producer"):
        props = {p.get("name"): p for p in prod.findall("property")}
        service = props.get("mlt_service")
        if service is None or (service.text or "") != "timewarp":
            continue
        speed = (props.get("warp_speed").text if props.get("warp_speed") is not None else
                 (props["resource"].text or "").split(":", 1)[0] if "resource" in props else "")
        resource = (props.get("warp_resource").text if props.get("warp_resource") is not None
                    else (props["resource"].text or "").split(":", 1)[-1])
        try:
            float(speed)
        except (TypeError, ValueError):
            continue
        service.text = "avformat"
        props["resource"].text = resource
        name = props.get("kdenlive:clipname")
        if name is None:
            name = ET.SubElement(prod, "property", name="kdenlive:clipname")
        name.text = f"{name.text or ''}{_WARP_TAG}{speed}"
        changed = True
    return ET.tostring(tree.getroot(), encoding="unicode") if changed else None


def _kdenlive_flags(timeline: otio.schema.Timeline, path: Path) -> None:
    """Kdenlive's hidden tracks (the eye/mute buttons set ``hide="video"``/``"audio"``/
    ``"both"`` on the main tractor's ``<track>``), which the adapter ignores: matched to
    the OTIO tracks in order (the adapter reads one OTIO track per Kdenlive track)."""
    for c in timeline.find_clips():
        if _WARP_TAG in (c.name or ""):
            # MLT timewarp: the entry's frames are the warped producer's; source = speed * it
            c.name, speed = c.name.split(_WARP_TAG, 1)
            speed = float(speed)
            sr = c.source_range
            c.source_range = TimeRange(RationalTime(sr.start_time.value * abs(speed),
                                                    sr.start_time.rate), sr.duration)
            c.effects.append(otio.schema.LinearTimeWarp(time_scalar=speed))
    tree = _parse(path)
    if tree is None:
        return
    root = tree.getroot()
    tractors = root.findall("tractor")
    if not tractors:
        return
    main = tractors[-1]
    entries = [t for t in main.findall("track") if t.get("producer") != "black_track"]
    if len(entries) != len(timeline.tracks):
        return
    for entry, track in zip(entries, timeline.tracks):
        hide = entry.get("hide") or ""
        kind = "video" if track.kind == otio.schema.TrackKind.Video else "audio"
        if hide in ("both", kind):
            track.enabled = False


def _aaf_track_names(timeline: otio.schema.Timeline, path: Path) -> None:
    """The AAF reader names an audio track after the ``Sequence`` inside its slot's
    OperationGroup (so every audio track reads as "Sequence"): take the slot names of the
    file's composition (when it holds one) instead, matched by kind in slot order."""
    try:
        import aaf2
        with aaf2.open(str(path), "r") as f:
            mobs = list(f.content.compositionmobs())
            if len(mobs) != 1:
                return
            names = {"Picture": [], "Sound": []}
            for slot in mobs[0].slots:
                kind = str(slot.media_kind)
                if kind in names:
                    names[kind].append(slot.name or "")
    except Exception:  # noqa: BLE001 - a repair never stops a file from loading
        return
    for kind, tracks in (("Picture", timeline.video_tracks()), ("Sound", timeline.audio_tracks())):
        if len(tracks) != len(names[kind]):
            continue
        for track, name in zip(tracks, names[kind]):
            if name and track.name in ("", "Sequence"):
                track.name = name
