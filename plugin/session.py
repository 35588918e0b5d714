"""A scoring session: one timeline selection, many takes.

This is the logic both faces share — the ``diffv2m score`` command and the PySide6 panel — so
nothing is written twice.  Features are computed once per selection (and cached on disk by
content); every new seed only samples and decodes.  Takes are written next to the timeline as
``NAME.take-SEED.wav`` (temp file + rename); exporting writes a NEW timeline file, and with
a score-family model optionally the first exported take's MIDI file and stems (one WAV per
track, added to the timeline as muted tracks), all in one output transaction
(:meth:`ScoringSession.export_with_score_files`).

A plain video opens as a one-clip timeline (in memory: :mod:`diffv2m.plugin.opened`), so the
selection is always an ``otio.opentime.TimeRange`` at :attr:`ScoringSession.rate`; it becomes
seconds and frames only where features are computed.
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
from diffv2m.plugin.opened import (MOSTLY_BLACK, VIDEO_SUFFIXES, open_media,  # noqa: F401 (API)
                                   selection_warnings, video_as_timeline)
from diffv2m.progress import Progress
from diffv2m.synthesis import Backend, Conditions, Settings, Take, synthesise


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
        #: the opened file: a timeline, or a plain video as a one-clip timeline in memory
        self.opened = open_media(self.path, rate=rate, media_root=self.media_root)
        self.is_video = self.opened.kind == "video"
        self.timeline = self.opened.timeline
        self.info = getattr(self.opened, "info", None)    # a plain video's probe
        self.selection = None           # otio TimeRange at self.rate
        self.takes: list[TakeRecord] = []
        #: What the selection's picture lacks (mostly black, title stand-ins, no start
        #: timecode...): shown by the CLI on stderr and by the panel in its status, and
        #: recorded in each exported timeline's metadata. Empty for a clean selection.
        self.warnings: list[str] = []
        self._conditions: Conditions | None = None
        self._conditions_cls: int | None = None      # the class the conditions were made for
        self._source = None
        first = self.opened.initial_selection()
        if first is not None:
            self._set(first)

    # -- selection -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"timeline"`` or ``"video"``: what was opened (for display)."""
        return self.opened.kind

    @property
    def rate(self) -> float:
        return self.opened.rate

    def select(self, **kw: Any) -> None:
        """``range=(in, out)`` | ``marker=NAME`` | ``clips=[...]``, ``track=N``; none: all.

        In/out are timecode (record TC), frames or seconds strings, or RationalTimes."""
        self._set(self.opened.select(**kw))

    def select_seconds(self, start: float, end: float) -> None:
        self._set(self.opened.select_seconds(start, end))

    def _set(self, selection: Any) -> None:
        source, warnings = self.opened.frame_source(selection)
        if selection != self.selection:
            self._conditions = None
        self.selection, self._source = selection, source
        self.warnings = warnings

    @property
    def selection_seconds(self) -> tuple[float, float]:
        if self.selection is None:
            raise UserError(f"{self.path}: nothing is selected")
        return self.opened.seconds(self.selection)

    @property
    def picture_file(self) -> tuple[Path, float, float] | None:
        """``(file, start, duration)`` when the selection's picture is one file's range (a
        plain video), else None (a timeline's picture is composited)."""
        return None if self.selection is None else self.opened.picture_file(self.selection)

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
        return self.opened.media_files()

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
        from diffv2m.plugin.timeline_writer import write_scored_timeline
        takes = self.export_records(takes)
        if not takes:
            raise UserError(f"{self.path}: no takes to export")
        out_path = Path(out_path)
        if out_path.resolve() == self.path.resolve():
            raise UserError(f"{out_path}: refusing to overwrite the original timeline")
        timeline, sel = self.timeline, self.opened.export_range(self.selection)
        first = takes[0].take
        meta = {**first.metadata(), **self.provenance(*self.selection_seconds),
                "takes": [t.take.metadata() for t in takes]}
        write_scored_timeline(timeline, sel, [t.path for t in takes], out_path, metadata=meta,
                              takes_as=takes_as, sample_rate=first.sample_rate,
                              input_path=self.opened.input_path,
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
        from diffv2m.families import check_outputs as check_family_outputs, family_of
        from diffv2m.score.files import check_outputs, stem_paths
        cfg = getattr(self.backend, "config", None)       # None: the caller checks the model
        if cfg is not None:
            check_family_outputs(family_of(cfg), midi=midi,
                                 stems=stem_paths(stems) if stems is not None else None)
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
        """``record``'s MIDI file and stems (one WAV per track, the mix's length; rendered now
        when the take was made without them) into the temporaries :meth:`declare_score_files`
        made, by the model's family; the stems are published at once (the timeline writer
        reads them back; the transaction's abort takes them back)."""
        from diffv2m.families import check_outputs as check_family_outputs, family_of
        take = record.take
        fam = family_of(self.backend.config)
        check_family_outputs(fam, midi=midi, stems=stems)
        if stems and take.stems is None:
            from diffv2m.score.render import render_stems
            take.stems = render_stems(take.score, sample_rate=take.sample_rate)
        meta = {**take.metadata(), **self.provenance(*self.selection_seconds),
                "take_path": str(record.path)}
        fam.write_outputs(take, midi=transaction.temporary(midi) if midi is not None else None,
                          stems={t: transaction.temporary(p) for t, p in stems.items()}
                          if stems else None, metadata=meta)
        for p in (stems or {}).values():
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
        self.opened.preview(self._source, self.selection, record.path, Path(out_mp4))
        return Path(out_mp4)


def holds_only_stems(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a folder holding nothing but stem files (an earlier export's)."""
    from diffv2m.score.files import stem_paths
    folder = Path(folder)
    names = {p.name for p in stem_paths(folder).values()}
    return folder.is_dir() and all(p.is_file() and p.name in names for p in folder.iterdir())


def holds_only_stems(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a folder holding nothing but stem files (an earlier export's)."""
    from diffv2m.score.files import stem_paths
    folder = Path(folder)
    names = {p.name for p in stem_paths(folder).values()}
    return folder.is_dir() and all(p.is_file() and p.name in names for p in folder.iterdir())
