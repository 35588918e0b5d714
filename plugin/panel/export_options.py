"""What an export writes besides the timeline: "Also write MIDI" and "Also write stems".

Both belong to the first exported take and need a score-family model (the checkboxes are
disabled otherwise).  For an export to ``DIR/NAME.otio`` the MIDI file is ``DIR/NAME.mid`` and
the stems (one WAV per track, added to the timeline as muted "Diff-V2M <track>" tracks) go to
the folder ``DIR/NAME-stems`` (:func:`score_file_paths`); the session writes them with the
timeline in one output transaction
(:meth:`diffv2m.plugin.session.ScoringSession.export_with_score_files`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

MIDI_TIP = "Also write the first exported take's notes as a MIDI file (NAME.mid), for a DAW"
STEMS_TIP = ("Also write one WAV per track (melody, accompaniment, bass, drums) into the "
             "folder NAME-stems; the timeline gets them as muted 'Diff-V2M <track>' tracks")
NEEDS_SCORE = "Needs a score-family model: this one makes audio directly"


def score_file_paths(out: str | Path, midi: bool, stems: bool) -> tuple[Path | None, Path | None]:
    """``(NAME.mid, NAME-stems)`` beside the exported timeline ``out`` (None where not asked)."""
    out = Path(out)
    return (out.with_suffix(".mid") if midi else None,
            out.with_name(f"{out.stem}-stems") if stems else None)


class ExportOptions(QWidget):
    """The two checkboxes; :meth:`paths` turns them into the session's ``midi``/``stems``."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.midi_box = QCheckBox("Also write MIDI")
        self.stems_box = QCheckBox("Also write stems")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.midi_box)
        lay.addWidget(self.stems_box)
        for box in (self.midi_box, self.stems_box):
            box.toggled.connect(lambda *_: self.changed.emit())
        self.set_backend(None)

    def set_backend(self, backend: Any) -> None:
        """Enable the boxes for a score-family backend (None: not loaded yet)."""
        family = getattr(getattr(backend, "config", None), "latent_family", None)
        ok = family == "score"
        for box, tip in ((self.midi_box, MIDI_TIP), (self.stems_box, STEMS_TIP)):
            box.setEnabled(ok)
            box.setToolTip(tip if ok or family is None else f"{NEEDS_SCORE}. {tip}")

    def paths(self, out: str | Path) -> tuple[Path | None, Path | None]:
        return score_file_paths(out, self.midi_box.isEnabled() and self.midi_box.isChecked(),
                                self.stems_box.isEnabled() and self.stems_box.isChecked())

    def save(self, qs: QSettings) -> None:
        qs.setValue("export/midi", self.midi_box.isChecked())
        qs.setValue("export/stems", self.stems_box.isChecked())

    def restore(self, qs: QSettings) -> None:
        for box, key in ((self.midi_box, "export/midi"), (self.stems_box, "export/stems")):
            box.setChecked(str(qs.value(key, False)).lower() in ("true", "1"))
