"""Generation controls: backend in use, seed (+ dice), steps, guidance, style, sampler, mode
(score model: the picture's, major or minor), Generate / New seed / Cancel, and the progress
of the running job.

:class:`GenerateControls` holds no logic of its own: :meth:`settings` builds a
:class:`diffv2m.synthesis.Settings` from the widgets and the buttons emit signals that the
panel turns into :class:`~diffv2m.plugin.session.ScoringSession` calls.
"""
from __future__ import annotations

import math
import random

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QProgressBar,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from diffv2m.generation_options import DEFAULTS, SAMPLER_NAMES, STYLES
from diffv2m.plugin.panel.rows import STRETCH, button, row_layout
from diffv2m.settings_limits import CFG_RANGE, MAX_SEED, MAX_STEPS
from diffv2m.synthesis import Settings

#: the mode choices (label, Settings.mode): the picture's first
MODES = (("from the picture", None), ("major", "major"), ("minor", "minor"))
MODEL_CFG = 0.5                      # the guidance box's "model's" value
MODE_TIP = ("The music's mode; \"from the picture\" reads it from the colour grade (dark, "
            "cool, desaturated footage: minor)")


def backend_kind(name: str) -> str:
    """A short human name for a backend's ``name`` (TensorRT / CUDA / CPU / other)."""
    low = (name or "").lower()
    if "tensorrt" in low or "trt" in low:
        return "TensorRT"
    if "cuda" in low:
        return "CUDA"
    if "cpu" in low:
        return "CPU"
    return name or "unknown"


class GenerateControls(QWidget):
    """The settings and buttons of a generation, and a progress read-out."""

    generateClicked = Signal()
    newSeedClicked = Signal()
    cancelClicked = Signal()
    settingsChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.backend_label = QLabel("Backend: (loading…)")
        self.backend_label.setObjectName("backendLabel")
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("Random seed: the same seed and settings give the same take")
        self.dice = QToolButton()
        self.dice.setText("Random")
        self.dice.setToolTip("Random seed")
        self.dice.clicked.connect(self.randomise_seed)
        self.steps = QSpinBox()
        # 0 reads "model's": the step count the model was tuned with (None)
        self.steps.setRange(0, MAX_STEPS)
        self.steps.setSpecialValueText("model's")
        self._set_steps(DEFAULTS.steps)
        self.steps.setToolTip("Sampler steps: more is slower; \"model's\" is the count the "
                              "model was tuned with (15 for the score model, 25 for audio)")
        self.cfg = QDoubleSpinBox()
        # one step below 1 reads "model's": the guidance the model was tuned with (None)
        self.cfg.setRange(MODEL_CFG, CFG_RANGE[1])
        self.cfg.setSpecialValueText("model's")
        self.cfg.setSingleStep(0.5)
        self.cfg.setDecimals(2)
        self._set_cfg(DEFAULTS.cfg_scale)
        self.cfg.setToolTip("Guidance (classifier-free guidance scale): how strongly the music "
                            "follows the picture; \"model's\" is the one the model was tuned "
                            "with (2 for the score model, 3 for audio)")
        self.style = QComboBox()
        for i, s in enumerate(STYLES):
            self.style.addItem(f"{i} · {s}", i)
        self.style.setCurrentIndex(DEFAULTS.cls)
        self.sampler = QComboBox()
        for s in SAMPLER_NAMES:
            self.sampler.addItem(s, s)
        self.mode = QComboBox()
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.mode.setToolTip(MODE_TIP)
        self._modal = True                 # the model writes notes, so it has a mode

        seed_box = QWidget()
        seed_box.setLayout(row_layout((self.seed, 1), self.dice, margins=False))

        form = QGridLayout()
        form.setContentsMargins(0, 0, 0, 0)
        pairs = [("Seed", seed_box), ("Steps", self.steps), ("Guidance", self.cfg),
                 ("Style", self.style), ("Sampler", self.sampler), ("Mode", self.mode)]
        for w in (self.seed, self.steps, self.cfg):
            w.setMaximumWidth(140)
        for k, (label, w) in enumerate(pairs):
            form.addWidget(QLabel(label), k // 3, 2 * (k % 3))
            form.addWidget(w, k // 3, 2 * (k % 3) + 1)
        form.setColumnStretch(6, 1)

        self.generate_button = button("Generate", self.generateClicked,
                                      tip="Make a take for the selection with these settings")
        self.generate_button.setDefault(True)
        self.new_seed_button = button(
            "New seed", self.newSeedClicked,
            tip="Next seed and generate (the video's features are reused)")
        self.cancel_button = button("Cancel", self.cancelClicked, enabled=False)
        buttons = row_layout(self.generate_button, self.new_seed_button, self.cancel_button,
                             STRETCH, self.backend_label)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.eta_label = QLabel("")

        prog = row_layout((self.progress, 1), self.eta_label)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addLayout(prog)

        for sig in (self.seed.valueChanged, self.steps.valueChanged, self.cfg.valueChanged,
                    self.style.currentIndexChanged, self.sampler.currentIndexChanged,
                    self.mode.currentIndexChanged):
            sig.connect(lambda *_: self.settingsChanged.emit())
        self.set_ready(False)

    # -- values -----------------------------------------------------------------------------
    def settings(self) -> Settings:
        return Settings(seed=self.seed.value(), steps=self.steps.value() or None,
                        cfg_scale=self._cfg(), sampler=self.sampler.currentData(),
                        cls=int(self.style.currentData()),
                        mode=self.mode.currentData() if self._modal else None)

    def set_settings(self, s: Settings) -> None:
        self.seed.setValue(int(s.seed))
        self._set_steps(s.steps)
        self._set_cfg(s.cfg_scale)
        i = self.style.findData(int(s.cls))
        self.style.setCurrentIndex(i if i >= 0 else 1)
        j = self.sampler.findData(s.sampler)
        self.sampler.setCurrentIndex(j if j >= 0 else 0)
        m = self.mode.findData(s.mode)
        self.mode.setCurrentIndex(m if m >= 0 else 0)

    def _cfg(self) -> float | None:
        v = float(self.cfg.value())
        return None if v < 1.0 else v

    def _set_cfg(self, value: float | None) -> None:
        self.cfg.setValue(MODEL_CFG if value is None else float(value))

    def _set_steps(self, value: int | None) -> None:
        self.steps.setValue(0 if value is None else int(value))

    def next_seed(self) -> int:
        """Advance the seed by one (wrapping) and return it."""
        self.seed.setValue((self.seed.value() + 1) % (MAX_SEED + 1))
        return self.seed.value()

    def randomise_seed(self) -> int:
        self.seed.setValue(random.randrange(0, MAX_SEED))
        return self.seed.value()

    def set_backend(self, name: str | None, error: str | None = None) -> None:
        if error:
            self.backend_label.setText("Backend: not available")
            self.backend_label.setToolTip(error)
        elif name is None:
            self.backend_label.setText("Backend: (loading…)")
        else:
            self.backend_label.setText(f"Backend: {backend_kind(name)}")
            self.backend_label.setToolTip(name)

    def set_family(self, family: str | None) -> None:
        """The model's latent family: only a score model (notes) takes a mode."""
        self._modal = family in (None, "score")
        self.mode.setEnabled(self._modal)
        self.mode.setToolTip(MODE_TIP if self._modal else
                             f"Needs a score-family model (this one makes audio). {MODE_TIP}")

    # -- state ------------------------------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        """Whether Generate can run (a backend and a selection are there, nothing is running)."""
        self.generate_button.setEnabled(ready)
        self.new_seed_button.setEnabled(ready)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        for w in (self.seed, self.dice, self.steps, self.cfg, self.style, self.sampler):
            w.setEnabled(not busy)
        self.mode.setEnabled(not busy and self._modal)
        if busy:
            self.set_ready(False)
            self.progress.setRange(0, 0)
            self.progress.setFormat("starting…")
            self.eta_label.setText("")

    def show_progress(self, stage: str, done: int, total: int, seconds_left: float) -> None:
        total = max(int(total), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(max(0, min(int(done), total)))
        self.progress.setFormat(f"{stage} {done}/{total}")
        self.eta_label.setText("" if seconds_left < 0 else f"about {_duration(seconds_left)} left")

    def show_idle(self, text: str = "idle") -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        self.eta_label.setText("")

    # -- persistence ------------------------------------------------------------------------
    def save(self, qs: QSettings) -> None:
        s = self.settings()
        qs.setValue("generate/seed", s.seed)
        qs.setValue("generate/steps", "" if s.steps is None else s.steps)
        qs.setValue("generate/cfg", "" if s.cfg_scale is None else s.cfg_scale)
        qs.setValue("generate/style", s.cls)
        qs.setValue("generate/sampler", s.sampler)
        qs.setValue("generate/mode", s.mode or "")

    def restore(self, qs: QSettings) -> None:
        d = Settings()
        try:
            self.set_settings(Settings(
                seed=int(qs.value("generate/seed", d.seed)),
                steps=int(qs.value("generate/steps") or 0) or None,
                cfg_scale=float(qs.value("generate/cfg") or 0) or None,
                sampler=str(qs.value("generate/sampler", d.sampler)),
                cls=int(qs.value("generate/style", d.cls)),
                mode=str(qs.value("generate/mode", "")) or None))
        except (TypeError, ValueError):
            self.set_settings(d)


def _duration(s: float) -> str:
    s = int(math.ceil(s))
    return f"{s // 60}:{s % 60:02d} min" if s >= 60 else f"{s} s"
