"""``MainWindow``: the panel as a standalone application window.

File ▸ Open (Ctrl+O), Open Recent, Export timeline (Ctrl+E), Quit; drag-and-drop of a
timeline or a video file onto the window; the title follows the panel's ("NAME* — N unsaved
takes"); geometry is remembered in the panel's QSettings.  Closing with unexported takes asks
first (``confirm_close=False`` skips the question, e.g. in tests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

from diffv2m.plugin.panel.panel import APP_NAME, ScorePanel


class MainWindow(QMainWindow):
    """A QMainWindow holding one :class:`ScorePanel` as its central widget."""

    def __init__(self, panel: ScorePanel | None = None, *, confirm_close: bool = True,
                 **panel_kwargs: Any):
        super().__init__()
        self.panel = panel or ScorePanel(**panel_kwargs)
        self.confirm_close = confirm_close
        self.setCentralWidget(self.panel)
        self.setWindowTitle(self.panel.windowTitle() or APP_NAME)
        self.panel.windowTitleChanged.connect(self.setWindowTitle)
        self.setAcceptDrops(True)
        self._menus()
        geo = self.panel.qsettings.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(980, 760)

    def _menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.panel.ask_open)
        m.addAction(self.open_action)
        self.recent_action = QAction("Open &last file", self)
        self.recent_action.triggered.connect(self._open_last)
        m.addAction(self.recent_action)
        self.export_action = QAction("&Export timeline…", self, shortcut=QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(lambda: self.panel.export_timeline())
        m.addAction(self.export_action)
        m.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        m.addAction(quit_action)

    def _open_last(self) -> None:
        last = self.panel.qsettings.value("files/last_file", "")
        if last:
            self.panel.open_path(str(last))

    # -- drag and drop ----------------------------------------------------------------------
    @staticmethod
    def dropped_path(mime) -> Path | None:
        """The first local file of a drop, or None."""
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return Path(url.toLocalFile())
        return None

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if self.dropped_path(e.mimeData()) is not None:
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        path = self.dropped_path(e.mimeData())
        if path is not None:
            e.acceptProposedAction()
            self.panel.open_path(path)

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, e) -> None:  # noqa: N802
        n = self.panel.unsaved_count()
        if n and self.confirm_close:
            answer = QMessageBox.question(
                self, APP_NAME, f"{n} take(s) are not in an exported timeline. Quit anyway? "
                "(Their WAV files stay on disk.)")
            if answer != QMessageBox.StandardButton.Yes:
                e.ignore()
                return
        self.panel.qsettings.setValue("window/geometry", self.saveGeometry())
        self.panel.controls.save(self.panel.qsettings)
        self.panel.qsettings.sync()
        self.panel.shutdown(5000)
        e.accept()
