"""A scoring session: one timeline selection (or one video range), many takes.

This is the logic both faces share — the ``diffv2m score`` command and the PySide6 panel — so
nothing is written twice.  Features are computed once per selection (and cached on disk by
content); every new seed only samples and decodes.  Takes are written next to the timeline as
``NAME.take-SEED.wav`` (temp file + rename); exporting writes a NEW timeline file, and with
a score-family model optionally the first exported take's MIDI file and stems (one WAV per
track, added to the timeline as muted tracks), all in one output transaction
(:meth:`ScoringSession.export_with_score_files`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffv2m.errors import UserError
from diffv2m.cache import default_cache_dir
from diffv2m.jobs import video_conditions, write_take
from diffv2m.progress import Progress
from diffv2m.synthesis import Backend, Conditions, Settings, Take, synthesise

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".mpg", ".mpeg"}


@dataclass
class TakeRecord:
    """A generated take as the editor sees it in the list."""
    path: Path
    take: Take
    created: float = field(default_factory=time.time)
    kept: bool = False

    @property
    def seed(self) -> int:
        return self.take.settings.seed


class ScoringSession:
    """Open a timeline (any OTIO-readable format) or a plain video and score a selection."""

    def __init__(self, path: str | os.PathLike, backend: Backend, *,
                 media_root: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None,
                 take_dir: str | os.PathLike | None = None, rate: float | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such file")
        self.backend = backend
        self.media_root = Path(media_root) if media_root else None
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "features"
        self.take_dir = Path(take_dir) if take_dir else self.path.parent
        self.is_video = self.path.suffix.lower() in VIDEO_SUFFIXES
        self.timeline = None
        self.selection = None           # otio TimeRange (timeline) or (start, end) seconds (video)
        self.takes: list[TakeRecord] = []
        #: What the selection's picture lacks (mostly black, title stand-ins, no start
        #: timecode...): shown by the CLI on stderr and by the panel in its status, and
        #: recorded in each exported timeline's metadata. Empty for a clean selection.
        self.warnings: list[str] = []
        self._conditions: Conditions | None = None
        self._conditions_cls: int | None = None      # the class the conditions were made for
        self._source = None
        if self.is_video:
            from diffv2m import media
            self.info = media.probe(self.path)
            self.select_seconds(0.0, self.info.duration)
        else:
            from diffv2m.plugin.timeline import load_timeline
            self.timeline = load_timeline(self.path, rate=rate, media_root=self.media_root)
            if not any(t.find_clips() for t in self.timeline.video_tracks()):
                raise UserError(f"{self.path}: the timeline has no video clips (only audio or "
                                "empty tracks): there is no picture to score")

    # -- selection -------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        if self.is_video:
            return float(self.info.fps or 24.0)
        from diffv2m.plugin.timeline import timeline_rate
        return timeline_rate(self.timeline)

    def select(self, **kw: Any) -> None:
        """Timeline selection: ``range=(in, out)`` | ``marker=NAME`` | ``clips=[...]``, ``track=N``."""
        if self.is_video:
            rng = kw.get("range")
            if rng is None:
                raise UserError(f"{self.path}: a plain video takes a time range only")
            self.select_seconds(*rng)
            return
        from diffv2m.plugin.timeline import resolve_segments, select
        from diffv2m.plugin.timeline_source import TimelineFrameSource
        sel = select(self.timeline, **{"name": str(self.path), **kw})
        segments = resolve_segments(self.timeline, sel, timeline_path=self.path,
                                    media_root=self.media_root)
        self._set(sel, TimelineFrameSource(segments))
        self.warnings = selection_warnings(segments)

    def select_seconds(self, start: float, end: float) -> None:
        if self.is_video:
            from diffv2m import media
            if not (0 <= start < end):
                raise UserError(f"{self.path}: empty selection {start:.3f}-{end:.3f} s")
            if start >= self.info.duration:
                raise UserError(f"{self.path}: selection starts past the end "
                                f"({start:.3f} s > {self.info.duration:.3f} s)")
            end = min(end, self.info.duration)
            self._set((start, end), media.FileFrameSource(self.path, start=start, end=end))
            self.warnings = []
        else:
            import opentimelineio as otio
            r = self.rate
            self.select(range=(otio.opentime.RationalTime(round(start * r), r),
                               otio.opentime.RationalTime(round(end * r), r)))

    def _set(self, selection: Any, source: Any) -> None:
        if selection != self.selection:
            self._conditions = None
        self.selection, self._source = selection, source

    @property
    def selection_seconds(self) -> tuple[float, float]:
        if self.selection is None:
            raise UserError(f"{self.path}: nothing is selected")
        if self.is_video:
            return self.selection
        start = self.selection.start_time.to_seconds()
        return start, start + self.selection.duration.to_seconds()

    # -- generation ------------------------------------------------------------------------
    def conditions(self, settings: Settings, progress: Progress | None = None) -> Conditions:
        """Features + rhythm of the selection, computed once (new seeds reuse them)."""
        if self._source is None:
            raise UserError(f"{self.path}: nothing is selected")
        if self._conditions is None or self._conditions_cls != settings.cls:
            self._conditions = video_conditions(self.backend, self._source, cls=settings.cls,
                                                cache_dir=self.cache_dir, progress=progress)
            self._conditions_cls = settings.cls
        return self._conditions

    def take_path(self, seed: int) -> Path:
        """``NAME.take-SEED.wav``; a second take with the same seed in this session (other
        settings) gets ``NAME.take-SEED-2.wav`` so no listed take is ever overwritten."""
        used = {t.path for t in self.takes}
        path = self.take_dir / f"{self.path.stem}.take-{seed}.wav"
        k = 2
        while path in used:
            path = self.take_dir / f"{self.path.stem}.take-{seed}-{k}.wav"
            k += 1
        return path

    def generate(self, settings: Settings, progress: Progress | None = None, *,
                 transaction: Any = None) -> TakeRecord:
        """One take for the current selection, written as NAME.take-SEED.wav.

        With ``transaction`` (a :class:`diffv2m.output_transaction.OutputTransaction` that
        declared :meth:`take_path` of the seed) the take is written to its temporary and
        published, so the transaction's abort takes it back."""
        t0 = time.perf_counter()
        conditions = self.conditions(settings, progress)
        t1 = time.perf_counter()
        take = synthesise(self.backend, conditions, settings, progress=progress)
        take.timings["conditions"] = t1 - t0
        start, end = self.selection_seconds
        path = self.take_path(settings.seed)
        if transaction is None:
            write_take(take, path, self.provenance(start, end))
        else:
            write_take(take, transaction.temporary(path), self.provenance(start, end))
            transaction.publish(path)
        take.timings["total"] = time.perf_counter() - t0
        record = TakeRecord(path=path, take=take)
        self.takes.append(record)
        return record

    def media_files(self) -> list[Path]:
        """Every existing media file the timeline references (all tracks, every reference of
        every clip) or the video itself: the inputs no output of a job may overwrite."""
        if self.is_video:
            return [self.path]
        import opentimelineio as otio
        from diffv2m.plugin.timeline import _Resolver, timeline_rate
        resolver = _Resolver(self.timeline, self.path, self.media_root, timeline_rate(self.timeline))
        found = []
        for clip in self.timeline.find_clips():
            for ref in clip.media_references().values():
                if not isinstance(ref, otio.schema.ExternalReference):
                    continue
                try:
                    found.append(resolver.media_path(clip, ref))
                except UserError:
                    pass                            # unresolvable: nothing there to overwrite
        return found

    def provenance(self, start: float, end: float) -> dict[str, Any]:
        """What produced a take: recorded in the WAV and in the exported timeline."""
        meta = {"source": str(self.path), "selection_seconds": [round(start, 6), round(end, 6)],
                "model": getattr(self.backend, "model_id", ""),
                "graph_hashes": getattr(self.backend, "graph_hashes", {})}
        if self.warnings:
            meta["warnings"] = list(self.warnings)
        return meta

    # -- export ----------------------------------------------------------------------------
    def export_timeline(self, out_path: str | os.PathLike, takes: list[TakeRecord] | None = None,
                        *, takes_as: str = "tracks", final_path: str | os.PathLike | None = None,
                        transaction=None, stems: dict[str, Path] | None = None) -> Path:
        """A NEW timeline with a "Diff-V2M score" track holding the takes; never the original.

        ``out_path`` is the file written; within an output transaction it is the temporary of
        ``final_path``, and a metadata sidecar the format needs joins ``transaction``.
        ``stems`` (``{track: wav}`` at their final paths, see :meth:`write_score_files`): one
        muted "Diff-V2M <track>" audio track each."""
        import opentimelineio as otio
        from diffv2m.plugin.timeline_writer import write_scored_timeline
        takes = self.export_records(takes)
        if not takes:
            raise UserError(f"{self.path}: no takes to export")
        out_path = Path(out_path)
        if out_path.resolve() == self.path.resolve():
            raise UserError(f"{out_path}: refusing to overwrite the original timeline")
        if self.is_video:
            timeline = video_as_timeline(self.path, self.info)
            start, end = self.selection_seconds
            r = self.rate
            sel = otio.opentime.TimeRange(otio.opentime.RationalTime(round(start * r), r),
                                          otio.opentime.RationalTime(round((end - start) * r), r))
        else:
            timeline, sel = self.timeline, self.selection
        first = takes[0].take
        meta = {**first.metadata(), **self.provenance(*self.selection_seconds),
                "takes": [t.take.metadata() for t in takes]}
        write_scored_timeline(timeline, sel, [t.path for t in takes], out_path, metadata=meta,
                              takes_as=takes_as, sample_rate=first.sample_rate,
                              input_path=None if self.is_video else self.path,
                              final_path=final_path, transaction=transaction, stems=stems)
        return out_path

    def export_records(self, takes: list[TakeRecord] | None = None) -> list[TakeRecord]:
        """The takes an export writes: ``takes``, else the kept ones, else all."""
        return takes if takes is not None else [t for t in self.takes if t.kept] or self.takes

    # -- MIDI and stems ----------------------------------------------------------------------
    def declare_score_files(self, transaction, *, midi: str | os.PathLike | None = None,
                            stems: str | os.PathLike | None = None,
                            replace_stems: bool = False) -> dict[str, Path] | None:
        """Check the MIDI path and the stems folder (:func:`diffv2m.score.files.check_outputs`;
        ``replace_stems``: a folder holding only an earlier export's stems may be written
        over) and declare them as outputs of ``transaction``; returns the stem paths."""
        from diffv2m.score.files import check_outputs, stem_paths
        from diffv2m.generation_options import refuse_score_options
        cfg = getattr(self.backend, "config", None)
        refuse_score_options(getattr(cfg, "name", ""), getattr(cfg, "latent_family", "score"),
                             {"--midi": midi, "--stems": stems})
        reuse = replace_stems and stems is not None and holds_only_stems(stems)
        check_outputs(midi, None if reuse else stems)
        if midi is not None:
            transaction.add(midi, "MIDI file")
        if stems is None:
            return None
        paths = stem_paths(stems)
        for t, p in paths.items():
            transaction.add(p, f"{t} stem")
        return paths

    def write_score_files(self, record: TakeRecord, transaction, *,
                          midi: str | os.PathLike | None = None,
                          stems: dict[str, Path] | None = None) -> None:
        """``record``'s MIDI file and stems (rendered now, one WAV per track, the mix's length)
        into the temporaries :meth:`declare_score_files` made; the stems are published at
        once (the timeline writer reads them back; the transaction's abort takes them back)."""
        score = record.take.score
        if score is None:
            raise UserError(f"{midi or next(iter((stems or {}).values()), '')}: MIDI and stems "
                            "come from a score-family model (--model score)")
        if midi is not None:
            from diffv2m.score.files import write_midi_file
            from diffv2m.score.take import midi_file_bytes
            write_midi_file(transaction.temporary(midi), midi_file_bytes(score))
        if stems:
            from diffv2m.score.files import write_stems
            from diffv2m.score.take import render_track_stems
            audio = render_track_stems(score, record.take.sample_rate)
            meta = {**record.take.metadata(), **self.provenance(*self.selection_seconds),
                    "take_path": str(record.path)}
            write_stems({t: transaction.temporary(p) for t, p in stems.items()}, audio,
                        record.take.sample_rate, meta)
            for p in stems.values():
                transaction.publish(p)

    def export_with_score_files(self, out_path: str | os.PathLike,
                                takes: list[TakeRecord] | None = None, *,
                                takes_as: str = "tracks",
                                midi: str | os.PathLike | None = None,
                                stems: str | os.PathLike | None = None) -> Path:
        """:meth:`export_timeline` plus the first exported take's MIDI file (``midi``) and
        stems (into the folder ``stems``, as tracks in the timeline), in one output
        transaction: every file appears, or none does (a folder holding only an earlier
        export's stems is written over)."""
        from diffv2m.output_transaction import OutputTransaction
        records = self.export_records(takes)
        if not records:
            raise UserError(f"{self.path}: no takes to export")
        tx = OutputTransaction([self.path, *self.media_files(), *(r.path for r in self.takes)])
        tx.check(out_path, "timeline")
        with tx:
            tmp = tx.add(out_path, "timeline")
            stem_map = self.declare_score_files(tx, midi=midi, stems=stems, replace_stems=True)
            self.write_score_files(records[0], tx, midi=midi, stems=stem_map)
            self.export_timeline(tmp, records, takes_as=takes_as, final_path=out_path,
                                 transaction=tx, stems=stem_map)
        return Path(out_path)

    def export_preview(self, record: TakeRecord, out_mp4: str | os.PathLike) -> Path:
        """The selection's picture with a take's music, as an H.264/AAC MP4."""
        from diffv2m import media
        start, end = self.selection_seconds
        if self.is_video:
            media.mux(self.path, record.path, out_mp4, start=start, end=end)
        else:
            from diffv2m.plugin.preview import render_preview
            render_preview(self._source, record.path, out_mp4, fps=self.rate)
        return Path(out_mp4)


def holds_only_stems(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a folder holding nothing but stem files (an earlier export's)."""
    from diffv2m.score.files import stem_paths
    folder = Path(folder)
    names = {p.name for p in stem_paths(folder).values()}
    return folder.is_dir() and all(p.is_file() and p.name in names for p in folder.iterdir())


#: A selection with more than this share of black or missing picture is reported.
MOSTLY_BLACK = 0.5


def selection_warnings(segments) -> list[str]:
    """Warnings about a resolved selection's picture (see ``ScoringSession.warnings``)."""
    out = []
    frac = segments.black_fraction() if hasattr(segments, "black_fraction") else 0.0
    if frac > MOSTLY_BLACK:
        out.append(f"{frac:.0%} of the selection has no picture (gaps, disabled clips or black "
                   "generators): the music follows a black screen there")
    out += list(getattr(segments, "notes", []))
    return out


def video_as_timeline(path: Path, info: Any):
    """A one-clip timeline over a plain video, so a video's takes export like a timeline's."""
    import opentimelineio as otio
    r = float(info.fps or 24.0)
    dur = otio.opentime.RationalTime(round(info.duration * r), r)
    ref = otio.schema.ExternalReference(
        target_url=path.resolve().as_uri(),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), dur))
    clip = otio.schema.Clip(name=path.stem, media_reference=ref,
                            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), dur))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[clip])
    tl = otio.schema.Timeline(name=path.stem, tracks=[track])
    tl.global_start_time = otio.opentime.RationalTime(0, r)
    return tl

