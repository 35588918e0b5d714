"""Kdenlive / MLT projects (.kdenlive, .mlt) with the score as a new audio track (torch-free).

Reading: ``.kdenlive`` goes through OTIO's Kdenlive adapter; ``.mlt`` (Shotcut's projects,
``melt`` XML) through this module's own OTIO adapter ``diffv2m_mlt`` (registered in
``plugin_manifest.json``; :func:`read_from_file`): the main tractor's tracks in order (a
playlist is a track; a Kdenlive-style track tractor gives its non-empty playlists), the
``background``/``black_track`` colour tracks skipped; ``<entry>`` -> Clip (``in``/``out``
inclusive, in the producer's frames; file producers/chains -> ExternalReference from frame 0,
``color`` producers -> SolidColor generators), ``<blank>`` -> Gap; a track is audio when
``shotcut:audio``/``kdenlive:audio_track`` is set (video when ``shotcut:video`` is; else
audio when ``hide="video"``), disabled when hidden (``hide`` ``both``, or ``video`` on a video
track, ``audio`` on an audio track); names from ``shotcut:name`` or
``kdenlive:track_name``; the rate from ``<profile>``. MLT transitions and filters are ignored
(the picture is the top-most visible track).

Writing does not round-trip the project through OTIO (which
would drop effects, bin folders and Kdenlive's own properties): when the input is itself an
MLT XML project its XML is copied and only added to; otherwise the OTIO Kdenlive adapter
writes the timeline (score track included), a ``mix`` transition is added for each audio
track (the adapter writes none), the tracks the timeline has disabled (the stems) are hidden
(``hide="both"``: the adapter writes no mute) and the same ``out`` finishing is applied:

* the take: a ``<producer>`` (``avformat``, absolute path, ``in``/``out``/``length``) listed in
  Kdenlive's ``main_bin``;
* the track: in a Kdenlive project a track tractor named "Diff-V2M score"
  (``kdenlive:audio_track`` 1) over a playlist holding ``<blank>`` up to the selection and the
  take's ``<entry>``; in other MLT projects (Shotcut) that playlist itself, with
  ``shotcut:audio`` 1 and ``shotcut:name``. Added as the last track of the main tractor
  (``hide="video"``), with a ``mix`` transition (``sum`` 1, ``always_active`` 1) so MLT mixes
  it with the other tracks' sound; alternate takes are added muted (``hide="both"``), and
  so are the stems (one track each, "Diff-V2M melody"..., after the takes);
* ``out`` on every producer, playlist and tractor that lacks one (the last frame of its
  content), and on the main tractor the project's last frame, so ``melt`` and Kdenlive's
  renderer stop at the project's end instead of MLT's 15,000-frame default.

The main tractor is the ``<mlt producer=...>`` one when that names a tractor, else the last
top-level ``<tractor>`` (what ``melt`` plays). Frame counts are at the profile's rate.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import opentimelineio as otio

from diffv2m.atomic import atomic_path
from diffv2m.errors import UserError

MLT_SUFFIXES = {".kdenlive", ".mlt"}

__all__ = ["write_mlt", "MLT_SUFFIXES", "mlt_frames"]


def _profile_rate(root: ET.Element, fallback: float) -> Fraction:
    prof = root.find("profile")
    if prof is not None and prof.get("frame_rate_num") and prof.get("frame_rate_den"):
        return Fraction(int(prof.get("frame_rate_num")), int(prof.get("frame_rate_den")))
    return Fraction(fallback).limit_denominator(1001)


def mlt_frames(value: str | None, rate: Fraction) -> int | None:
    """An MLT time (frames ``123``, clock ``00:00:05.120`` or SMPTE ``00:00:05:03``) in frames."""
    if value is None or value == "":
        return None
    v = value.strip()
    try:
        return int(v)
    except ValueError:
        pass
    parts = v.replace(",", ".").split(":")
    try:
        if len(parts) == 3 and "." in parts[2]:
            h, m, sec = int(parts[0]), int(parts[1]), float(parts[2])
            return int(round((h * 3600 + m * 60 + sec) * rate))
        if len(parts) == 4:
            h, m, sec, f = (int(p) for p in parts)
            return int((h * 3600 + m * 60 + sec) * round(rate) + f)
        if len(parts) == 3:
            h, m, sec = (float(p) for p in parts)
            return int(round((h * 3600 + m * 60 + sec) * rate))
    except ValueError:
        return None
    return None


def _prop(el: ET.Element, name: str) -> str | None:
    for p in el.findall("property"):
        if p.get("name") == name:
            return p.text
    return None


def _set_prop(el: ET.Element, name: str, value) -> None:
    for p in el.findall("property"):
        if p.get("name") == name:
            p.text = str(value)
            return
    ET.SubElement(el, "property", name=name).text = str(value)


def _main_tractor(root: ET.Element) -> ET.Element:
    by_id = {el.get("id"): el for el in root if el.get("id")}
    named = by_id.get(root.get("producer") or "")
    if named is not None and named.tag == "tractor":
        return named
    tractors = root.findall("tractor")
    if not tractors:
        raise UserError("the project has no <tractor> (not an MLT timeline)")
    return tractors[-1]


class _Lengths:
    """Length in frames of every top-level producer/playlist/tractor (memoised)."""

    def __init__(self, root: ET.Element, rate: Fraction):
        self.rate = rate
        self.by_id = {el.get("id"): el for el in root if el.get("id")}
        self.memo: dict[str, int] = {}

    def of(self, pid: str | None) -> int:
        if not pid or pid not in self.by_id:
            return 0
        if pid in self.memo:
            return self.memo[pid]
        self.memo[pid] = 0                                   # cycles: 0
        el = self.by_id[pid]
        n = 0
        if el.tag == "playlist":
            for child in el:
                if child.tag == "blank":
                    n += mlt_frames(child.get("length"), self.rate) or 0
                elif child.tag == "entry":
                    a = mlt_frames(child.get("in"), self.rate) or 0
                    b = mlt_frames(child.get("out"), self.rate)
                    if b is None:
                        b = self.of(child.get("producer")) - 1
                    n += max(0, b - a + 1)
        elif el.tag == "tractor":
            n = max([self.of(t.get("producer")) for t in el.findall("track")] or [0])
            if el.get("out") is not None:
                a = mlt_frames(el.get("in"), self.rate) or 0
                n = min(n, (mlt_frames(el.get("out"), self.rate) or 0) - a + 1) or n
        else:
            out = mlt_frames(el.get("out"), self.rate)
            if out is not None:
                n = out - (mlt_frames(el.get("in"), self.rate) or 0) + 1
            else:
                n = mlt_frames(_prop(el, "length"), self.rate) or 0
        self.memo[pid] = n
        return n


def _take_frames(take: Path, rate: Fraction) -> int | None:
    from diffv2m.plugin.timeline_writer import _audio_seconds
    seconds = _audio_seconds(take)
    return None if seconds is None else int(seconds * rate)


def _add_score(root: ET.Element, rate: Fraction, takes: Sequence[Path], start: int,
               length: int, stems: dict[str, Path] | None = None) -> None:
    from diffv2m.plugin.timeline_writer import SCORE_TRACK_NAME, stem_track_name
    main = _main_tractor(root)
    children = list(root)
    insert_at = children.index(main)
    bin_pl = next((el for el in root.findall("playlist") if el.get("id") == "main_bin"), None)
    used_ids = {int(v) for el in root.iter("property") if el.get("name") == "kdenlive:id"
                for v in [el.text or ""] if v.strip().isdigit()}
    next_id = max(used_ids | {1}) + 1
    kdenlive = any((el.get("name") or "").startswith("kdenlive:") for el in root.iter("property"))
    new_elements: list[ET.Element] = []
    track_ids: list[str] = []
    # (file, track name, clip name, muted): the takes, then the stems
    tracks = [(take, SCORE_TRACK_NAME if k == 0 else f"{SCORE_TRACK_NAME} (take {k + 1})",
               take.stem, k > 0) for k, take in enumerate(takes)]
    tracks += [(Path(p), stem_track_name(t), stem_track_name(t), True)
               for t, p in (stems or {}).items()]
    muted = [m for *_, m in tracks]
    for k, (take, name, clip_name, mute) in enumerate(tracks):
        pid = f"diffv2m_take{k + 1}"
        n = _take_frames(take, rate) or length
        prod = ET.Element("producer", id=pid, **{"in": "0", "out": str(max(n, length) - 1)})
        _set_prop(prod, "length", max(n, length))
        _set_prop(prod, "resource", str(take.resolve()))
        _set_prop(prod, "mlt_service", "avformat")
        _set_prop(prod, "kdenlive:clipname", clip_name)
        _set_prop(prod, "kdenlive:id", next_id)
        if bin_pl is not None:
            entry = ET.SubElement(bin_pl, "entry", producer=pid,
                                  **{"in": "0", "out": str(max(n, length) - 1)})
            _set_prop(entry, "kdenlive:id", next_id)
        next_id += 1
        pl = ET.Element("playlist", id=f"diffv2m_score{k + 1}")
        if kdenlive:
            _set_prop(pl, "kdenlive:audio_track", 1)
        else:
            _set_prop(pl, "shotcut:audio", 1)
            _set_prop(pl, "shotcut:name", name)
        if start > 0:
            ET.SubElement(pl, "blank", length=str(start))
        ET.SubElement(pl, "entry", producer=pid, **{"in": "0", "out": str(length - 1)})
        if not kdenlive:
            new_elements += [prod, pl]
            track_ids.append(pl.get("id"))
            continue
        empty = ET.Element("playlist", id=f"diffv2m_score{k + 1}_b")
        tr = ET.Element("tractor", id=f"diffv2m_score_track{k + 1}",
                        **{"in": "0", "out": str(start + length - 1)})
        _set_prop(tr, "kdenlive:track_name", name)
        _set_prop(tr, "kdenlive:audio_track", 1)
        ET.SubElement(tr, "track", producer=pl.get("id"), hide="video")
        ET.SubElement(tr, "track", producer=empty.get("id"), hide="both")
        if mute:
            _set_prop(tr, "kdenlive:mute", 1)
        new_elements += [prod, pl, empty, tr]
        track_ids.append(tr.get("id"))
    for el in reversed(new_elements):
        root.insert(insert_at, el)
    # The bin's producers must come before main_bin refers to them.
    if bin_pl is not None and list(root).index(bin_pl) < list(root).index(new_elements[0]):
        root.remove(bin_pl)
        root.insert(list(root).index(main), bin_pl)
    for k, tid in enumerate(track_ids):
        ET.SubElement(main, "track", producer=tid, hide="both" if muted[k] else "video")
        index = len(main.findall("track")) - 1
        tr = ET.SubElement(main, "transition", id=f"diffv2m_mix{k + 1}")
        _set_prop(tr, "a_track", 0)
        _set_prop(tr, "b_track", index)
        _set_prop(tr, "mlt_service", "mix")
        _set_prop(tr, "always_active", 1)
        _set_prop(tr, "sum", 1)
        _set_prop(tr, "internal_added", 237)
    # transitions must follow the tracks inside a tractor
    tracks = [c for c in main if c.tag == "track"]
    others = [c for c in main if c.tag != "track"]
    props = [c for c in others if c.tag == "property"]
    rest = [c for c in others if c.tag != "property"]
    for c in list(main):
        main.remove(c)
    for c in props + tracks + rest:
        main.append(c)


def _mix_audio_tracks(root: ET.Element) -> None:
    """The Kdenlive adapter writes no ``mix`` transitions, so MLT would play one audio track
    only: add one per audio track of the main tractor (as Kdenlive itself does)."""
    main = _main_tractor(root)
    by_id = {el.get("id"): el for el in root if el.get("id")}
    mixed = {_prop(t, "b_track") for t in main.findall("transition")
             if _prop(t, "mlt_service") == "mix"}
    for i, t in enumerate(main.findall("track")):
        el = by_id.get(t.get("producer"))
        if i == 0 or el is None or str(i) in mixed:
            continue
        if (_prop(el, "kdenlive:audio_track") or "") == "1" or \
                (_prop(el, "shotcut:audio") or "") == "1":
            tr = ET.SubElement(main, "transition", id=f"diffv2m_mix_t{i}")
            for k, v in (("a_track", 0), ("b_track", i), ("mlt_service", "mix"),
                         ("always_active", 1), ("sum", 1)):
                _set_prop(tr, k, v)


def _hide_disabled_tracks(root: ET.Element, timeline: otio.schema.Timeline) -> None:
    """``hide="both"`` on the main tractor's entry of each track ``timeline`` has disabled
    (the Kdenlive adapter writes one entry per OTIO track, in order, after ``black_track``)."""
    entries = [t for t in _main_tractor(root).findall("track")
               if t.get("producer") != "black_track"]
    if len(entries) != len(timeline.tracks):
        return
    for entry, track in zip(entries, timeline.tracks):
        if not track.enabled:
            entry.set("hide", "both")


def _finish_outs(root: ET.Element, rate: Fraction) -> None:
    lengths = _Lengths(root, rate)
    for el in list(root):
        if el.tag not in ("producer", "playlist", "tractor", "chain") or not el.get("id") \
                or el.get("id") == "main_bin":
            continue
        if el.get("out") is None:
            n = lengths.of(el.get("id"))
            if n > 0:
                el.set("in", el.get("in") or "0")
                el.set("out", str(n - 1))
    main = _main_tractor(root)
    n = max([lengths.of(t.get("producer")) for t in main.findall("track")
             if t.get("producer") != "black_track"] or [0])
    if n > 0:
        main.set("in", "0")
        main.set("out", str(n - 1))
        for t in main.findall("track"):
            if t.get("producer") == "black_track":
                black = lengths.by_id.get("black_track")
                if black is not None:
                    black.set("in", "0")
                    black.set("out", str(n - 1))
                    _set_prop(black, "length", n)


def write_mlt(new: otio.schema.Timeline, out: Path, takes: Sequence[Path], *,
              source: Path | None, stems: dict[str, Path] | None = None) -> Path:
    """Write ``new`` (the input timeline plus its score tracks) as a Kdenlive/MLT project;
    ``stems`` (``{track: wav}``) become muted tracks after the takes'."""
    from diffv2m.plugin.timeline import adapter_output, timeline_rate
    meta = new.metadata.get("diffv2m", {})
    rate_f = timeline_rate(new)
    if source is not None and source.suffix.lower() in MLT_SUFFIXES:
        try:
            tree = ET.parse(str(source))
        except ET.ParseError as exc:
            raise UserError(f"{source}: not MLT XML: {exc}") from None
        root = tree.getroot()
        rate = _profile_rate(root, rate_f)
        scale = float(rate) / rate_f
        start = int(round(meta["selection_start"] * scale))
        length = int(round(meta["selection_duration"] * scale))
        _add_score(root, rate, takes, start, length, stems)
    else:
        with adapter_output():
            text = otio.adapters.write_to_string(new, adapter_name="kdenlive")
        root = ET.fromstring(text)
        rate = _profile_rate(root, rate_f)
        _mix_audio_tracks(root)
        _hide_disabled_tracks(root, new)
    _finish_outs(root, rate)
    with atomic_path(out) as tmp:
        ET.ElementTree(root).write(str(tmp), encoding="utf-8", xml_declaration=True)
    return out


# --------------------------------------------------------------------- reading (.mlt)

_SKIP_TRACKS = {"background", "black_track"}
_FILE_SERVICES = ("avformat", "avformat-novalidate", "qimage", "pixbuf", "timewarp")


def read_from_file(filepath, **_kwargs) -> otio.schema.Timeline:
    """OTIO adapter entry (``diffv2m_mlt``): an MLT XML project as an OTIO timeline."""
    try:
        root = ET.parse(str(filepath)).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"not MLT XML: {exc}") from None
    if root.tag != "mlt":
        raise ValueError("not an MLT project (no <mlt> root)")
    rate_f = _profile_rate(root, 25.0)
    rate = float(rate_f)
    lengths = _Lengths(root, rate_f)
    by_id = lengths.by_id
    main = _main_tractor(root)
    tl = otio.schema.Timeline(name=root.get("title") or Path(filepath).stem)
    tl.global_start_time = otio.opentime.RationalTime(0, rate)

    def ref_for(pid: str):
        el = by_id.get(pid)
        if el is None:
            return otio.schema.MissingReference()
        service = _prop(el, "mlt_service") or ""
        resource = _prop(el, "resource") or ""
        n = lengths.of(pid)
        avail = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                        otio.opentime.RationalTime(max(n, 1), rate))
        if service == "color" or service == "colour":
            return otio.schema.GeneratorReference(generator_kind="SolidColor",
                                                  parameters={"color": resource},
                                                  available_range=avail)
        if service.startswith(_FILE_SERVICES) or (resource and not service):
            if service == "timewarp" and ":" in resource:
                resource = resource.split(":", 1)[1]
            url = resource if os.path.isabs(resource) or "://" in resource else \
                str((Path(filepath).parent / resource))
            return otio.schema.ExternalReference(target_url=url, available_range=avail)
        return otio.schema.GeneratorReference(generator_kind=service, available_range=avail)

    def track_from_playlist(pl: ET.Element, entry: ET.Element, name: str):
        hide = entry.get("hide") or ""
        if (_prop(pl, "shotcut:audio") or "") == "1" or \
                (_prop(pl, "kdenlive:audio_track") or "") == "1":
            audio = True
        elif (_prop(pl, "shotcut:video") or "") == "1":
            audio = False                       # a hidden video track also has hide="video"
        else:
            audio = hide == "video"
        kind = otio.schema.TrackKind.Audio if audio else otio.schema.TrackKind.Video
        track = otio.schema.Track(name=_prop(pl, "shotcut:name") or name or pl.get("id"),
                                  kind=kind)
        track.enabled = not (hide == "both" or (hide == "video" and not audio)
                             or (hide == "audio" and audio))
        for item in pl:
            if item.tag == "blank":
                n = mlt_frames(item.get("length"), rate_f) or 0
                if n > 0:
                    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(n, rate))))
            elif item.tag == "entry":
                pid = item.get("producer")
                a = mlt_frames(item.get("in"), rate_f) or 0
                b = mlt_frames(item.get("out"), rate_f)
                if b is None:
                    b = lengths.of(pid) - 1
                if b < a:
                    continue
                prod = by_id.get(pid)
                cname = (_prop(prod, "shotcut:caption") or _prop(prod, "kdenlive:clipname")
                         if prod is not None else None) or pid
                track.append(otio.schema.Clip(
                    name=cname, media_reference=ref_for(pid),
                    source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(a, rate),
                                                         otio.opentime.RationalTime(b - a + 1, rate))))
        return track

    for entry in main.findall("track"):
        pid = entry.get("producer")
        el = by_id.get(pid)
        if el is None or pid in _SKIP_TRACKS:
            continue
        if el.tag == "playlist":
            tl.tracks.append(track_from_playlist(el, entry, ""))
        elif el.tag == "tractor":
            name = _prop(el, "kdenlive:track_name") or ""
            is_audio = (_prop(el, "kdenlive:audio_track") or "") == "1"
            for sub in el.findall("track"):
                pl = by_id.get(sub.get("producer"))
                if pl is None or pl.tag != "playlist" or not len(pl.findall("entry")):
                    continue
                t = track_from_playlist(pl, entry, name)
                if is_audio:
                    t.kind = otio.schema.TrackKind.Audio
                tl.tracks.append(t)
    return tl
