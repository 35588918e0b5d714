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

EDL output is refused: the cmx_3600 writer writes one video track and drops audio, so the
score would be lost.

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
from pathlib import Path
from typing import Sequence

import opentimelineio as otio

from diffv2m.atomic import atomic_path
from diffv2m.errors import UserError

from .timeline import timeline_rate

RationalTime = otio.opentime.RationalTime
TimeRange = otio.opentime.TimeRange

SCORE_TRACK_NAME = "Diff-V2M score"

__all__ = ["write_scored_timeline", "add_score_tracks", "SCORE_TRACK_NAME"]


def _jsonable(value):
    """Metadata OTIO can store: Paths to str, tuples to lists, unknowns to str."""
    return json.loads(json.dumps(value, default=str))


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
                     source_dir: Path | None = None) -> otio.schema.Timeline:
    """A deep copy of ``timeline`` with the score track(s) appended (nothing written).

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
    return new


def write_scored_timeline(timeline: otio.schema.Timeline, selection: TimeRange,
                          take_paths: Sequence[os.PathLike | str], out_path: os.PathLike | str,
                          *, metadata: dict, takes_as: str = "tracks",
                          sample_rate: int | None = None,
                          input_path: os.PathLike | str | None = None,
                          adapter_name: str | None = None, **adapter_args) -> Path:
    """Write a new timeline (the input plus the score track(s)) to ``out_path``, atomically.

    The adapter is chosen from ``out_path``'s suffix (``.otio``, ``.otioz``, ``.xml`` for
    FCP 7 XML...) unless ``adapter_name`` is given; extra ``adapter_args`` go to the adapter.
    ``input_path`` (the file the timeline was read from) may not be ``out_path``; when given,
    relative media paths are rebased so they still resolve from ``out_path``'s folder.
    Returns ``out_path``.
    """
    out = Path(out_path)
    if input_path is not None:
        inp = Path(input_path)
        same = inp.resolve() == out.resolve()
        if not same and inp.exists() and out.exists():
            same = os.path.samefile(inp, out)
        if same:
            raise UserError(f"{out}: refusing to overwrite the input timeline; "
                            "choose another output file")
    if adapter_name is None:
        from .timeline import adapter_for
        adapter_name = adapter_for(out, write=True)
    if adapter_name == "cmx_3600":
        raise UserError(f"{out}: an EDL cannot carry the music (the cmx_3600 writer keeps one "
                        "video track and no audio); write .otio or FCP 7 .xml instead")
    new = add_score_tracks(timeline, selection, take_paths, out.parent.resolve()
                           if out.parent.exists() else out.parent.absolute(),
                           metadata=metadata, takes_as=takes_as, sample_rate=sample_rate,
                           source_dir=Path(input_path).parent if input_path is not None else None)
    try:
        with atomic_path(out) as tmp:
            otio.adapters.write_to_file(new, str(tmp), adapter_name=adapter_name,
                                        **adapter_args)
    except UserError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{out}: the {adapter_name} adapter cannot write this timeline: "
                        f"{msg}") from None
    return out
