"""``diffv2m panel [TIMELINE_OR_VIDEO]``: the scoring panel as a standalone window.

Runs on the torch-free runtime (the embedded default's exported graphs unless
``--onnx-dir``), loaded in the background while the window opens.  ``--screenshot PNG``
opens the file, waits until the window is drawn, saves it and exits (offscreen works:
``QT_QPA_PLATFORM=offscreen``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffv2m.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m panel",
                                description="Open the Diff-V2M scoring panel on a timeline or video.")
    p.add_argument("path", nargs="?", help="timeline (.otio, .edl, .xml, ...) or video to open")
    p.add_argument("--onnx-dir", help="exported graphs (default: the embedded model's)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the runtime (default: all cores but one, for the UI)")
    p.add_argument("--media-root", help="relink: look for missing media by name under this folder")
    p.add_argument("--take-dir", help="where takes are written (default: beside the timeline)")
    p.add_argument("--settings", help="an INI file for the panel's settings instead of the "
                                      "user's (DiffV2M/Studio)")
    p.add_argument("--screenshot", metavar="PNG", help="save the window as PNG once the file is "
                                                       "open, then exit")
    return p


def pyside_problem() -> str:
    """A known-bad PySide6 for this Python, or "" (6.12.0 on CPython < 3.12 mis-counts the
    references of None and True and aborts long sessions with "deallocating None")."""
    import PySide6
    if PySide6.__version__.startswith("6.12.0") and sys.version_info < (3, 12):
        return (f"PySide6 {PySide6.__version__} has a reference-counting bug on Python "
                f"{sys.version_info.major}.{sys.version_info.minor} that crashes long sessions; "
                "install pyside6-essentials/pyside6-addons 6.11.3")
    return ""


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.path and not Path(args.path).exists():
        raise UserError(f"{args.path}: no such file")
    from PySide6.QtCore import QEvent, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from diffv2m.runtime import ort
    from diffv2m.plugin.panel.window import MainWindow

    warning = pyside_problem()
    if warning:
        print(f"diffv2m panel: warning: {warning}", file=sys.stderr)

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "diffv2m"])
    app.setOrganizationName("DiffV2M")
    app.setApplicationName("Studio")
    settings = (QSettings(args.settings, QSettings.Format.IniFormat) if args.settings
                else QSettings("DiffV2M", "Studio"))

    from diffv2m.plugin.panel.worker import panel_threads

    def loader():
        return ort.load_runtime(args.onnx_dir, threads=args.threads or panel_threads())

    win = MainWindow(settings=settings, backend_loader=loader, media_root=args.media_root,
                     take_dir=args.take_dir, confirm_close=not args.screenshot)
    win.show()
    status = {"rc": 0}
    if args.path:
        win.panel.open_path(args.path)
    if args.screenshot:
        def shoot():
            if win.panel.is_busy() or win.panel.strip.thumbnails.pending():
                QTimer.singleShot(100, shoot)
                return
            if win.panel.last_error and win.panel.session is None:
                print(f"diffv2m panel: {win.panel.last_error}", file=sys.stderr)
                status["rc"] = 2
            win.grab().save(args.screenshot)
            win.close()
            app.quit()
        QTimer.singleShot(200, shoot)
    app.exec()
    # Closing the last window posted a second Quit; drop it, so that event loops run after
    # main() returns (a host's, a test's) are not ended by it.
    app.removePostedEvents(app, QEvent.Type.Quit)
    return status["rc"]
