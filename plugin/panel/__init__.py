"""The PySide6 panel: timeline strip, selection, generate / new seed, progress, cancel,
preview playback, takes and export — the face of :class:`diffv2m.plugin.session.ScoringSession`.

* :class:`ScorePanel` (``panel.py``) is a QWidget meant to live in a host's dock::

      dock = QDockWidget("Diff-V2M score", host_window)
      panel = ScorePanel()
      dock.setWidget(panel)
      panel.windowTitleChanged.connect(dock.setWindowTitle)

* :class:`MainWindow` (``window.py``) wraps it for standalone use (``diffv2m panel FILE``):
  File ▸ Open and drag-and-drop of a timeline or a video.

Importing this package imports PySide6 only when one of the names is used; torch is never
imported.
"""
from __future__ import annotations

__all__ = ["ScorePanel", "MainWindow"]


def __getattr__(name: str):
    if name == "ScorePanel":
        from diffv2m.plugin.panel.panel import ScorePanel
        return ScorePanel
    if name == "MainWindow":
        from diffv2m.plugin.panel.window import MainWindow
        return MainWindow
    raise AttributeError(name)
