"""User-facing errors: one line, naming the file and the problem; the CLI exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (bad file, bad range, bad option).

    The CLI prints ``diffv2m: error: <message>`` on one line, with no traceback, and exits 2.
    Messages should name the file and the problem, e.g. ``clip.mp4: no video stream``.
    """


class Cancelled(Exception):
    """Raised inside long work when the caller asked to stop (panel Cancel, Ctrl-C)."""
