"""Background jobs for the panel: the UI thread never runs long work and never blocks.

A :class:`Job` is a :class:`QRunnable` that runs ``fn(progress)`` on a :class:`QThreadPool`
thread.  ``progress(stage, done, total)`` (the library's callback, see
:data:`diffv2m.synthesis.Progress`) is turned into the Qt signal
:attr:`JobSignals.progress` ``(stage, done, total, seconds_left)`` and checks the job's cancel
flag: after :meth:`Job.cancel`, the next callback raises :class:`diffv2m.errors.Cancelled`,
so generation stops at the end of the sampler step in flight.  :class:`ScoringSession` writes
takes by temp file + rename after sampling, so a cancelled generation writes nothing.

Signals are emitted from the pool thread and delivered (queued) to receivers in the UI thread.
Exactly one of ``result`` / ``failed`` / ``cancelled`` is emitted, then always ``done``.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from diffv2m.errors import Cancelled, UserError


def panel_threads() -> int:
    """CPU threads for the runtime under the panel: all cores but one, kept for the UI.

    Measured on a 2-core machine: with every core busy in ONNX Runtime the UI thread's
    20 ms heartbeat saw gaps up to ~120 ms; with one core left free they stayed near 25 ms.
    """
    return max(1, (os.cpu_count() or 2) - 1)


class ProgressClock:
    """Estimates the seconds left in the current stage from the pace so far.

    ``update(stage, done, total)`` returns the estimate (``-1.0`` while unknown: at a stage's
    first report, or when it cannot be known).
    """

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self._now = now
        self._stage: str | None = None
        self._t0 = 0.0
        self._done0 = 0

    def update(self, stage: str, done: int, total: int) -> float:
        t = self._now()
        if stage != self._stage or done < self._done0:
            self._stage, self._t0, self._done0 = stage, t, done
            return -1.0
        advanced = done - self._done0
        if advanced <= 0 or total <= 0:
            return -1.0
        per_unit = (t - self._t0) / advanced
        return max(0.0, per_unit * (total - done))


class JobSignals(QObject):
    """The signals of one :class:`Job` (a QRunnable cannot carry signals itself)."""

    progress = Signal(str, int, int, float)   # stage, done, total, seconds left (-1 unknown)
    result = Signal(object)                   # what fn returned
    failed = Signal(str, str, bool)           # message, details (traceback), is_user_error
    cancelled = Signal()
    done = Signal()                           # always last


class Job(QRunnable):
    """Run ``fn(progress)`` off the UI thread; cancellable through the progress callback."""

    def __init__(self, fn: Callable[[Callable[[str, int, int], None]], Any], name: str = "job"):
        super().__init__()
        self.setAutoDelete(False)           # Python keeps the reference (see ScorePanel._job)
        self.fn = fn
        self.name = name
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self._clock = ProgressClock()
        self.finished = threading.Event()   # set when run() returns (for shutdown waits)
        self.stages: list[tuple[str, int, int]] = []  # every report, for tests and logs
        self.outcome = ""                   # "done" | "cancelled" | "failed" once finished

    # -- UI thread ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next progress report (within one sampler step)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # -- pool thread -------------------------------------------------------------------------
    def _progress(self, stage: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.name} cancelled")
        self.stages.append((stage, int(done), int(total)))
        left = self._clock.update(stage, int(done), int(total))
        self.signals.progress.emit(str(stage), int(done), int(total), float(left))

    def run(self) -> None:  # noqa: D401 - QRunnable API
        sig = self.signals
        try:
            if self._cancel.is_set():
                raise Cancelled(f"{self.name} cancelled")
            out = self.fn(self._progress)
            if self._cancel.is_set() and out is None:
                raise Cancelled(f"{self.name} cancelled")
            self.outcome = "done"
            sig.result.emit(out)
        except Cancelled:
            self.outcome = "cancelled"
            sig.cancelled.emit()
        except UserError as exc:
            self.outcome = "failed"
            sig.failed.emit(str(exc), "", True)
        except BaseException as exc:  # noqa: BLE001 - anything must reach the UI, not crash it
            self.outcome = "failed"
            sig.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc(), False)
        finally:
            self.finished.set()
            sig.done.emit()
