"""User-facing errors: one line, naming the file and the problem; the CLI exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (bad file, bad range, bad option).

    The CLI prints ``diffv2m: error: <message>`` on one line, with no traceback, and exits 2.
    Messages should name the file and the problem, e.g. ``clip.mp4: no video stream``.
    """


class Cancelled(Exception):
    """Raised inside long work when the caller asked to stop (panel Cancel, Ctrl-C)."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (a host or a render farm
    stopping the job).  A ``KeyboardInterrupt`` subclass, so every cleanup that runs on
    Ctrl-C also runs here; the CLI exits 143 (128 + SIGTERM)."""
