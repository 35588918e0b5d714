"""The ``diffv2m`` command line: a table of subcommands, each implemented in its own module.

Each module exposes ``main(argv: list[str]) -> int`` with its own argparse parser, and is only
imported when its subcommand runs, so ``diffv2m --help`` works on a machine without torch.
User mistakes (:class:`diffv2m.errors.UserError`) print one line and exit with code 2; so do
system errors on the user's files (disk full, read-only folder, permission), named with their
real cause and path.  Ctrl-C exits 130 and SIGTERM 143, each with one line, after every output
transaction has removed what it had started.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("diffv2m.generate_cli", "make music for a video (embedded default model unless --checkpoint)"),
    "score": ("diffv2m.plugin.score_cli", "score a timeline selection and write a new timeline with the music"),
    "panel": ("diffv2m.plugin.panel.app", "open the PySide6 panel on a timeline or video"),
    "corpus": ("diffv2m.data.corpus_cli", "build the offline paired video/music corpus (corpus build)"),
    "features": ("diffv2m.data.features_cli", "precompute per-clip features for a manifest (features extract)"),
    "train": ("diffv2m.train.cli", "train the autoencoder or the prior (train autoencoder|prior)"),
    "explore-latents": ("diffv2m.train.explore", "plot the autoencoder's latent space as a PNG"),
    "evaluate": ("diffv2m.evaluate.cli", "score generated music against references and videos"),
    "export": ("diffv2m.export.cli", "export a checkpoint to ONNX graphs (export onnx)"),
    "engines": ("diffv2m.export.engines_cli", "build, list and verify TensorRT engines"),
    "convert": ("diffv2m.convert.cli", "convert the published Diff-V2M checkpoint (convert official)"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: diffv2m COMMAND [options]", "",
             "Diff-V2M Studio: video-to-music generation.", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'diffv2m COMMAND --help' for a command's options."]
    return "\n".join(lines)


def _raise_terminated(signum, frame):
    from .errors import Terminated
    raise Terminated()


def install_sigterm_handler():
    """SIGTERM raises :class:`diffv2m.errors.Terminated` in the main thread (like Ctrl-C).
    Returns the previous handler (``None`` when not installed: not the main thread)."""
    import threading
    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, _raise_terminated)
    return None


def _one_line_usage_error(self, message: str):
    """argparse's error, on one line (its usage block is what ``--help`` is for)."""
    self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: list[str] | None = None) -> int:
    from .errors import Cancelled, Terminated, UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(f"diffv2m {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"diffv2m: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    # The panel runs a Qt event loop, which keeps the default SIGTERM (quit at once).
    previous = install_sigterm_handler() if name != "panel" else None
    import argparse
    argparse_error = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _one_line_usage_error
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except UserError as exc:
        print(f"diffv2m: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("diffv2m: terminated (SIGTERM); nothing half-written was left", file=sys.stderr)
        return 143
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "PySide6", "onnx", "tensorrt", "open_clip"):
            print(f"diffv2m: error: '{name}' needs the Python package {exc.name.split('.')[0]!r}, "
                  "which is not installed (see README: extras)", file=sys.stderr)
            return 2
        raise
    except OSError as exc:
        if exc.errno is None:
            raise
        from .output_transaction import os_error_message
        print(f"diffv2m: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Cancelled):
        print("diffv2m: interrupted; nothing half-written was left", file=sys.stderr)
        return 130
    finally:
        argparse.ArgumentParser.error = argparse_error
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


#: commands whose outputs are all committed (or taken back) and flushed when ``main`` returns,
#: so the program may leave without the interpreter's teardown (see :func:`run`)
QUICK_EXIT = frozenset({"generate", "score"})


def run() -> None:
    """The ``diffv2m`` program (``python -m diffv2m`` and the installed command): :func:`main`,
    then, for the :data:`QUICK_EXIT` commands, out at once.  By then every output is renamed
    into place or removed and the streams are flushed here; what is skipped is the teardown:
    freeing the loaded SoundFont, onnxruntime's sessions and thread pools, every module
    (0.06-0.12 s of each take).  Other commands (the panel, training) exit as usual."""
    rc = main()
    argv = sys.argv[1:]
    if argv and argv[0] in QUICK_EXIT:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    run()
