"""Write a new timeline with the generated music on its own audio track(s) (torch-free).

The input timeline object is deep-copied and never changed; the input file is never
written (``out_path`` equal to it is refused). The new track is named ``"Diff-V2M score"``;
it holds a gap up to the selection's start, then one clip with the selection's duration
whose ExternalReference points to the take's audio file. All ranges are in the timeline's
frame rate (FCP 7 XML refuses 48000 Hz ranges), and every reference gets an
``available_range`` (the FCP XML writers need it).

Several takes (``takes_as``):

* ``"tracks"`` (default): take 1 on "Diff-V2M score", take k on "Diff-V2M score (take k)",
  each track a gap plus the take's clip. Every NLE and every adapter shows them; editors
  mute or delete the tracks they do not want.
* ``"clips"``: one track, one clip whose ``media_references`` holds every take under the keys
  ``take-1``, ``take-2``...; the active one is ``take-1``. That is OTIO's own way to carry
  alternates; hosts that understand multiple references can switch, adapters that do not
  (EDL, FCP XML) write the active take only.

Stems (``stems``, ``{track: wav}``, :func:`diffv2m.score.files.stem_paths`): after the score
track(s), one audio track per stem, named ``"Diff-V2M <track>"`` (:func:`stem_track_name`:
"Diff-V2M melody", ...), aligned like the first take (a gap up to the selection, then one clip
of its duration, named like its track). The stems sum to the mix, so their tracks are written
muted (``enabled`` False: FCP 7 ``<enabled>FALSE</enabled>``, Kdenlive/MLT ``hide="both"``;
FCPX has no tracks, so there the stem clips are disabled; AAF carries no mute): unmute them and
mute the mix to mix the parts. Their clips' metadata has ``stem`` and ``stem_path``; the
sidecar lists them under ``stems``.

EDL output is refused: the cmx_3600 writer writes one video track and drops audio, so the
score would be lost.

Per output format (what Premiere, Resolve, Avid and Kdenlive need on import):

* Every ExternalReference gets an ``available_range`` (the FCP 7/FCPX writers need one;
  EDL clips have none): the media file's own (start timecode + probed length) where the
  file is found, else the clip's source range. The score's reference is an absolute
  ``file://`` URL in every format but OTIO's own (which keeps a relative path when the take
  lies near the timeline).
* FCP 7 XML (``fcp_xml``): after the adapter writes, the score's ``<file>`` gets an absolute
  ``file://`` ``<pathurl>``, ``<duration>`` and ``<media><audio>`` with
  ``<samplecharacteristics>`` (sample rate, depth) and ``<channelcount>``, its clipitem a
  ``<sourcetrack>`` (audio, track 1), its ``<track>`` ``<name>Diff-V2M score</name>`` (read
  back by :func:`~diffv2m.plugin.timeline.load_timeline`). Disabled clips/tracks and speed
  changes go out as ``<enabled>FALSE</enabled>`` and ``timeremap`` filters.
* AAF: written with ``use_empty_mob_ids`` (new media get fresh MobIDs) and every clip's and
  reference's ranges rescaled to the sequence rate (the AAF writer refuses mixed rates).
* Kdenlive/MLT: see :mod:`diffv2m.plugin.timeline_mlt` (``out`` set on every producer,
  playlist and tractor).
* Metadata: OTIO files keep ``metadata["diffv2m"]``; every other format drops it, so a sidecar
  ``OUT.diffv2m.json`` (the timeline's and each take's ``diffv2m`` metadata) is written next to
  the output.

Metadata: each score clip and track carries ``metadata["diffv2m"]`` (the caller's dict plus
``take``, ``take_path`` and ``sample_rate``); the timeline's ``metadata["diffv2m"]`` records
the selection (``selection_start`` / ``selection_duration`` in frames, ``rate``) and the
caller's dict.
"""
from __future__ import annotations

import json
import os
import urllib.parse
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import opentimelineio as otio

from diffv2m.atomic import atomic_path
from diffv2m.errors import UserError

from diffv2m.plugin.timeline import timeline_rate

RationalTime = otio.opentime.RationalTime
TimeRange = otio.opentime.TimeRange

SCORE_TRACK_NAME = "Diff-V2M score"

__all__ = ["write_scored_timeline", "add_score_tracks", "SCORE_TRACK_NAME", "sidecar_path",
           "stem_track_name"]


def stem_track_name(track: str) -> str:
    """The audio track (and clip) name of a stem: ``"Diff-V2M melody"``."""
    return f"Diff-V2M {track}"


def _jsonable(value):
    """Metadata OTIO can store: Paths to str, tuples to lists, OTIO's own dictionaries and
    lists (read back from a timeline) to plain ones, unknowns to str."""
    from collections.abc import Mapping, Sequence

    def plain(v):
        if isinstance(v, Mapping):
            return dict(v)
        if isinstance(v, Sequence) and not isinstance(v, (str, bytes)):
            return list(v)
        return str(v)
    return json.loads(json.dumps(value, default=plain))


def _audio_seconds(path: Path) -> float | None:
    """Length of an audio file in seconds (None when it cannot be read)."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except Exception:
        pass
    try:
        import av
        with av.open(str(path)) as c:
            if c.streams.audio:
                s = c.streams.audio[0]
                if s.duration is not None and s.time_base is not None:
                    return float(s.duration * s.time_base)
            if c.duration is not None:
                return c.duration / 1_000_000
    except Exception:
        pass
    return None


def _target_url(take: Path, out_dir: Path) -> str:
    """Relative path from the output's folder when possible, else a file:// URL."""
    take = take.resolve()
    try:
        rel = os.path.relpath(take, out_dir.resolve())
    except ValueError:  # other drive (Windows)
        return take.as_uri()
    if rel.startswith(".." + os.sep + ".." + os.sep + ".."):
        return take.as_uri()
    return Path(rel).as_posix()


def _reference(take: Path, out_dir: Path, rate: float, selection: TimeRange,
               sample_rate: int | None) -> otio.schema.ExternalReference:
    seconds = _audio_seconds(take) if take.exists() else None
    length = selection.duration
    if seconds is not None:
        measured = RationalTime.from_seconds(seconds, rate).ceil()
        if measured > length:
            length = measured
    md = {"diffv2m": _jsonable({"sample_rate": sample_rate, "seconds": seconds})}
    return otio.schema.ExternalReference(
        target_url=_target_url(take, out_dir),
        available_range=TimeRange(RationalTime(0, rate), length),
        metadata=md)


def _rebase_media(timeline: otio.schema.Timeline, source_dir: Path, out_dir: Path) -> None:
    """Rewrite relative media paths (relative to ``source_dir``) to be relative to ``out_dir``."""
    if source_dir.resolve() == out_dir.resolve():
        return
    for c in timeline.find_clips():
        refs = c.media_references()
        for ref in refs.values():
            if not isinstance(ref, otio.schema.ExternalReference) or not ref.target_url:
                continue
            url = ref.target_url
            if urllib.parse.urlparse(url).scheme or Path(url).is_absolute():
                continue
            ref.target_url = _target_url(source_dir / url, out_dir)


def add_score_tracks(timeline: otio.schema.Timeline, selection: TimeRange,
                     take_paths: Sequence[os.PathLike | str], out_dir: Path, *,
                     metadata: dict, takes_as: str = "tracks",
                     sample_rate: int | None = None,
                     source_dir: Path | None = None,
                     stems: dict[str, os.PathLike | str] | None = None) -> otio.schema.Timeline:
    """A deep copy of ``timeline`` with the score track(s) appended (nothing written), and
    one muted track per stem of ``stems`` (see the module docstring).

    With ``source_dir`` (the input timeline's folder), relative media paths of the existing
    clips are rewritten relative to ``out_dir`` so the new file still finds its media.
    """
    if takes_as not in ("tracks", "clips"):
        raise UserError(f"takes_as {takes_as!r}: use 'tracks' or 'clips'")
    takes = [Path(p) for p in take_paths]
    if not takes:
        raise UserError("score: no takes to put on the timeline")
    rate = timeline_rate(timeline)
    start = selection.start_time.rescaled_to(rate).round()
    duration = selection.duration.rescaled_to(rate).round()
    sel = TimeRange(start, duration)
    new = timeline.deepcopy()
    if source_dir is not None:
        _rebase_media(new, Path(source_dir), Path(out_dir))
    base_md = _jsonable(dict(metadata or {}))
    new.metadata["diffv2m"] = {
        **base_md,
        "selection_start": int(start.value), "selection_duration": int(duration.value),
        "rate": rate, "takes": [str(p) for p in takes], "takes_as": takes_as,
    }
    if stems:
        new.metadata["diffv2m"]["stems"] = {t: str(p) for t, p in stems.items()}

    def clip_for(index: int, refs: dict[str, otio.schema.ExternalReference]) -> otio.schema.Clip:
        take = takes[index]
        clip = otio.schema.Clip(name=take.stem,
                                source_range=TimeRange(RationalTime(0, rate), duration))
        if len(refs) == 1:
            clip.media_reference = next(iter(refs.values()))
        else:
            clip.set_media_references(refs, "take-1")
        clip.metadata["diffv2m"] = {**base_md, "take": index + 1, "take_path": str(take),
                                    "sample_rate": sample_rate}
        return clip

    def track_named(name: str, clip: otio.schema.Clip, take_no: int) -> otio.schema.Track:
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
        track.metadata["diffv2m"] = {**base_md, "take": take_no}
        if start.value > 0:
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate), start)))
        track.append(clip)
        return track

    refs = [_reference(t, out_dir, rate, sel, sample_rate) for t in takes]
    if takes_as == "tracks" or len(takes) == 1:
        for i in range(len(takes)):
            name = SCORE_TRACK_NAME if i == 0 else f"{SCORE_TRACK_NAME} (take {i + 1})"
            new.tracks.append(track_named(name, clip_for(i, {"take-1": refs[i]}), i + 1))
    else:
        keyed = {f"take-{i + 1}": r for i, r in enumerate(refs)}
        new.tracks.append(track_named(SCORE_TRACK_NAME, clip_for(0, keyed), 1))
    for part, path in (stems or {}).items():
        name = stem_track_name(part)
        clip = otio.schema.Clip(name=name, source_range=TimeRange(RationalTime(0, rate), duration),
                                media_reference=_reference(Path(path), out_dir, rate, sel,
                                                           sample_rate))
        clip.metadata["diffv2m"] = {**base_md, "take": 1, "stem": part, "stem_path": str(path),
                                    "sample_rate": sample_rate}
        track = track_named(name, clip, 1)
        track.metadata["diffv2m"]["stem"] = part
        track.enabled = False                   # the stems sum to the mix: muted
        new.tracks.append(track)
    return new


_OTIO_NATIVE = {"otio_json", "otioz", "otiod"}


def _media_range(ref, clip, timeline_dir: Path | None, rate: float) -> TimeRange:
    """An available range for a reference that has none (see the module docstring)."""
    from diffv2m.plugin.timeline import _embedded_start
    from diffv2m.plugin.timeline_linker import find_media
    src = clip.source_range or clip.trimmed_range()
    try:
        path, _ = find_media(ref.target_url, clip_name=clip.name, timeline_dir=timeline_dir)
    except ValueError:
        path = None
    if path is not None:
        try:
            from diffv2m import media
            info = media.probe(path)
            r = src.start_time.rate
            start = _embedded_start(path)
            start = start.rescaled_to(r) if start is not None else RationalTime(0, r)
            rng = TimeRange(start, RationalTime.from_seconds(info.duration, r).floor())
            if rng.start_time <= src.start_time and src.end_time_exclusive() <= \
                    rng.end_time_exclusive():
                return rng
        except Exception:
            pass
    return TimeRange(src.start_time, src.duration)


def _complete_references(timeline, timeline_dir: Path | None, rate: float) -> None:
    for c in timeline.find_clips():
        ref = c.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.available_range is None:
            ref.available_range = _media_range(ref, c, timeline_dir, rate)
        elif isinstance(ref, otio.schema.MissingReference) and ref.available_range is None:
            src = c.source_range or c.trimmed_range()     # an EDL clip that was not relinked
            ref.available_range = TimeRange(src.start_time, src.duration)


def _rescale_to(timeline, rate: float) -> None:
    """Every clip's, gap's and reference's ranges at ``rate`` (whole frames): the AAF
    writer needs one edit rate throughout."""
    def rs(rng):
        return None if rng is None else TimeRange(rng.start_time.rescaled_to(rate).round(),
                                                  rng.duration.rescaled_to(rate).round())
    for item in timeline.find_children():
        if isinstance(item, (otio.schema.Clip, otio.schema.Gap)) and item.source_range:
            item.source_range = rs(item.source_range)
        if isinstance(item, otio.schema.Clip):
            for ref in item.media_references().values():
                if ref.available_range is not None:
                    ref.available_range = rs(ref.available_range)
        if isinstance(item, otio.schema.Transition):
            item.in_offset = item.in_offset.rescaled_to(rate).round()
            item.out_offset = item.out_offset.rescaled_to(rate).round()
    if timeline.global_start_time is not None:
        timeline.global_start_time = timeline.global_start_time.rescaled_to(rate).round()


def _absolute_takes(timeline, takes: Sequence[Path], stem_names: Sequence[str] = ()) -> None:
    """Point the score clips (and the stems' tracks ``stem_names``) at their takes by
    absolute file:// URLs."""
    uris = {t.resolve().name: t.resolve().as_uri() for t in takes}
    for track in timeline.tracks:
        if not track.name.startswith(SCORE_TRACK_NAME) and track.name not in stem_names:
            continue
        for c in track.find_clips():
            for ref in c.media_references().values():
                if isinstance(ref, otio.schema.ExternalReference):
                    name = Path(urllib.parse.unquote(ref.target_url)).name
                    if name in uris:
                        ref.target_url = uris[name]


def _audio_props(path: Path) -> tuple[int | None, int | None, int | None]:
    """(sample rate, channels, bit depth) of a take."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getframerate(), w.getnchannels(), 8 * w.getsampwidth()
    except Exception:
        pass
    try:
        import av
        with av.open(str(path)) as c:
            st = c.streams.audio[0]
            return int(st.codec_context.sample_rate), int(st.codec_context.channels), None
    except Exception:
        return None, None, None


def _patch_fcp_xml(path: Path, takes: Sequence[Path], rate: float,
                   stems: dict[str, Path] | None = None) -> None:
    """Fill in what the fcp_xml writer leaves out for the score and the stems (see the module
    docstring); a stem's ``<file>`` is found by its absolute URL, a take's by its name."""
    import xml.etree.ElementTree as ET
    tree = ET.parse(str(path))
    root = tree.getroot()
    by_name = {t.resolve().name: t.resolve() for t in takes}
    by_url = {Path(p).resolve().as_uri(): (Path(p).resolve(), stem_track_name(t))
              for t, p in (stems or {}).items()}
    parent = {c: p for p in root.iter() for c in p}
    for file_e in root.iter("file"):
        url_e = file_e.find("pathurl")
        if url_e is None or not url_e.text:
            continue
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url_e.text).path or
                                         url_e.text)).name
        take, track_name = by_url.get(url_e.text, (by_name.get(name), SCORE_TRACK_NAME))
        if take is None:
            continue
        url_e.text = take.as_uri()
        sr, ch, depth = _audio_props(take)
        seconds = _audio_seconds(take)
        if seconds is not None and file_e.find("duration") is None:
            dur = ET.Element("duration")
            dur.text = str(int(RationalTime.from_seconds(seconds, rate).ceil().value))
            file_e.insert(1, dur)
        media_e = file_e.find("media")
        if media_e is None:
            media_e = ET.SubElement(file_e, "media")
        for v in media_e.findall("video"):
            media_e.remove(v)
        audio_e = media_e.find("audio")
        if audio_e is None:
            audio_e = ET.SubElement(media_e, "audio")
        for child in list(audio_e):
            audio_e.remove(child)
        chars = ET.SubElement(audio_e, "samplecharacteristics")
        if depth:
            ET.SubElement(chars, "depth").text = str(depth)
        if sr:
            ET.SubElement(chars, "samplerate").text = str(sr)
        if ch:
            ET.SubElement(audio_e, "channelcount").text = str(ch)
        # The clipitem holding it: Premiere links an audio clipitem to its file's channels
        # through <sourcetrack>.
        item = parent.get(file_e)
        if item is not None and item.tag == "clipitem" and item.find("sourcetrack") is None:
            st = ET.SubElement(item, "sourcetrack")
            ET.SubElement(st, "mediatype").text = "audio"
            ET.SubElement(st, "trackindex").text = "1"
        # The track holding this take: name it.
        node = file_e
        while node is not None and node.tag != "track":
            node = parent.get(node)
        if node is not None and node.find("name") is None:
            n = ET.Element("name")
            n.text = track_name
            node.insert(0, n)
    tree.write(str(path), encoding="UTF-8", xml_declaration=True)


def _fcp_xml_carry(timeline) -> None:
    """What the fcp_xml writer drops, put where it writes from (``metadata["fcp_xml"]``, which
    it turns into child elements): ``<enabled>FALSE</enabled>`` on disabled clips and tracks,
    and a ``timeremap`` filter (speed in percent; 0 = freeze) on retimed clips."""
    def md(item):
        if "fcp_xml" not in item.metadata:
            item.metadata["fcp_xml"] = {}
        return item.metadata["fcp_xml"]

    for item in [t for t in timeline.tracks] + list(timeline.find_clips()):
        if not item.enabled:
            md(item)["enabled"] = "FALSE"
    for c in timeline.find_clips():
        speed = None
        for e in c.effects:
            if isinstance(e, otio.schema.LinearTimeWarp):
                speed = (1.0 if speed is None else speed) * float(e.time_scalar)
        if speed is None or speed == 1.0 or "filter" in md(c):
            continue
        md(c)["filter"] = {"effect": {
            "name": "Time Remap", "effectid": "timeremap", "effectcategory": "motion",
            "effecttype": "motion", "mediatype": "video",
            "parameter": [{"parameterid": "speed", "name": "speed",
                           "value": f"{abs(speed) * 100:g}"},
                          {"parameterid": "reverse", "name": "reverse",
                           "value": "TRUE" if speed < 0 else "FALSE"}]}}


def _patch_fcpx_xml(path: Path, rate: float, timeline) -> None:
    """What the fcpx_xml writer gets wrong or drops: an empty ``frameDuration`` at rates
    outside its presets (23.976, 29.97, ...), which FCPX and the adapter's own reader refuse;
    the sequence's record start (``tcStart``, ``tcFormat``); ``enabled="0"`` on disabled
    clips (matched by name, source start and duration)."""
    import xml.etree.ElementTree as ET
    from fractions import Fraction
    tree = ET.parse(str(path))
    root = tree.getroot()
    fr = Fraction(rate).limit_denominator(1001)
    for fmt in root.iter("format"):
        if not fmt.get("frameDuration"):
            fmt.set("frameDuration", f"{fr.denominator}/{fr.numerator}s")
    gst = timeline.global_start_time
    if gst is not None and gst.value:
        frames = int(round(gst.rescaled_to(rate).value))
        start = Fraction(frames) / fr                   # frames * frameDuration, exact
        df = abs(rate - 30000 / 1001) < 1e-3 or abs(rate - 60000 / 1001) < 1e-3
        for seq in root.iter("sequence"):
            if not seq.get("tcStart"):
                seq.set("tcStart", f"{start.numerator}/{start.denominator}s"
                        if start.denominator != 1 else f"{start.numerator}s")
                seq.set("tcFormat", "DF" if df else "NDF")
    off = set()
    for c in timeline.find_clips():
        if not c.enabled and c.source_range is not None:
            off.add((c.name, round(c.source_range.start_time.to_seconds(), 6),
                     round(c.source_range.duration.to_seconds(), 6)))
    if off:
        from diffv2m.plugin.timeline_repairs import fcpx_seconds as _fcpx_seconds
        for el in root.iter():
            if el.tag in ("clip", "asset-clip", "ref-clip", "video") and el.get("name") and \
                    (el.get("name"), _fcpx_seconds(el.get("start")),
                     _fcpx_seconds(el.get("duration"))) in off:
                el.set("enabled", "0")
    text = ET.tostring(root, encoding="unicode")
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n' + text,
                    encoding="utf-8")


def _sidecar(out: Path, timeline, transaction=None) -> Path:
    """``OUT.diffv2m.json``: the diffv2m metadata a non-OTIO format cannot carry (an output of
    ``transaction`` when one is given, else written atomically on its own)."""
    takes, stems = [], []
    for track in timeline.tracks:
        for c in track.find_clips():
            if "diffv2m" in c.metadata:
                md = _jsonable(dict(c.metadata["diffv2m"]))
                (stems if "stem" in md else takes).append({"track": track.name,
                                                           "clip": c.name, **md})
    data = {"timeline": str(out.name), "diffv2m": _jsonable(dict(timeline.metadata["diffv2m"])),
            "takes": takes}
    if stems:
        data["stems"] = stems
    side = sidecar_path(out)
    text = json.dumps(data, indent=2, sort_keys=True)
    if transaction is not None:
        Path(transaction.add(side, "metadata sidecar")).write_text(text)
        return side
    with atomic_path(side) as tmp:
        Path(tmp).write_text(text)
    return side


def sidecar_path(out: os.PathLike | str) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".diffv2m.json")


@contextmanager
def _writer_errors(out: Path, what: str):
    """A writer's failure as one line naming ``out`` (a :class:`UserError` passes as it is)."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{out}: {what}: {msg}") from None


def write_scored_timeline(timeline: otio.schema.Timeline, selection: TimeRange,
                          take_paths: Sequence[os.PathLike | str], out_path: os.PathLike | str,
                          *, metadata: dict, takes_as: str = "tracks",
                          sample_rate: int | None = None,
                          input_path: os.PathLike | str | None = None,
                          adapter_name: str | None = None,
                          final_path: os.PathLike | str | None = None, transaction=None,
                          stems: dict[str, os.PathLike | str] | None = None,
                          **adapter_args) -> Path:
    """Write a new timeline (the input plus the score track(s)) to ``out_path``, atomically.

    The adapter is chosen from ``out_path``'s suffix (``.otio``, ``.otioz``, ``.xml`` for
    FCP 7 XML...) unless ``adapter_name`` is given; extra ``adapter_args`` go to the adapter.
    ``input_path`` (the file the timeline was read from) may not be ``out_path``; when given,
    relative media paths are rebased so they still resolve from ``out_path``'s folder.
    ``final_path``: the name the file will have when ``out_path`` is a temporary of an output
    transaction (``transaction``); a metadata sidecar is named after it and joins the
    transaction. ``stems`` (``{track: wav}``, at their final paths): one muted track each.
    Returns ``out_path``.
    """
    out = Path(out_path)
    final = Path(final_path) if final_path is not None else out
    if input_path is not None:
        inp = Path(input_path)
        same = inp.resolve() == out.resolve()
        if not same and inp.exists() and out.exists():
            same = os.path.samefile(inp, out)
        if same:
            raise UserError(f"{out}: refusing to overwrite the input timeline; "
                            "choose another output file")
    if adapter_name is None:
        from diffv2m.plugin.timeline import adapter_for
        adapter_name = ("diffv2m_mlt" if out.suffix.lower() == ".mlt"
                        else adapter_for(out, write=True))
    if adapter_name == "cmx_3600":
        raise UserError(f"{out}: an EDL cannot carry the music (the cmx_3600 writer keeps one "
                        "video track and no audio); write .otio or FCP 7 .xml instead")
    from diffv2m.plugin.timeline import adapter_output
    new = add_score_tracks(timeline, selection, take_paths, out.parent.resolve()
                           if out.parent.exists() else out.parent.absolute(),
                           metadata=metadata, takes_as=takes_as, sample_rate=sample_rate,
                           source_dir=Path(input_path).parent if input_path is not None else None,
                           stems=stems)
    rate = timeline_rate(new)
    takes = [Path(t) for t in take_paths]
    stems = {t: Path(p) for t, p in (stems or {}).items()}
    src_dir = Path(input_path).resolve().parent if input_path is not None else None
    _complete_references(new, src_dir, rate)
    if adapter_name not in _OTIO_NATIVE:
        _absolute_takes(new, takes + list(stems.values()),
                        [stem_track_name(t) for t in stems])
    if adapter_name == "fcpx_xml":                   # no tracks there: mute the stem clips
        for track in new.tracks:
            if "stem" in track.metadata.get("diffv2m", {}):
                for c in track.find_clips():
                    c.enabled = False
    if adapter_name == "fcp_xml":
        _fcp_xml_carry(new)
    if adapter_name == "AAF":
        _rescale_to(new, rate)
        adapter_args.setdefault("use_empty_mob_ids", True)
    if adapter_name in ("kdenlive", "diffv2m_mlt"):
        from diffv2m.plugin.timeline_mlt import write_mlt
        with _writer_errors(out, "cannot write this timeline as a Kdenlive/MLT project"):
            write_mlt(new, out, takes, source=Path(input_path) if input_path else None,
                      stems=stems)
        _sidecar(final, new, transaction)
        return out
    with _writer_errors(out, f"the {adapter_name} adapter cannot write this timeline"):
        with atomic_path(out) as tmp:
            with adapter_output():
                otio.adapters.write_to_file(new, str(tmp), adapter_name=adapter_name,
                                            **adapter_args)
            if adapter_name == "fcp_xml":
                _patch_fcp_xml(Path(tmp), takes, rate, stems)
            elif adapter_name == "fcpx_xml":
                _patch_fcpx_xml(Path(tmp), rate, new)
    if adapter_name not in _OTIO_NATIVE:
        _sidecar(final, new, transaction)
    return out
