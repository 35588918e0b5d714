"""One output transaction per job: every file a job writes appears together, or none does.

A job (``generate``, ``score``...) first *declares* each output with :meth:`OutputTransaction.add`,
before any work: the path is checked (not a folder, its parent a folder, not an input of the job
after resolving symlinks, not given twice) and an empty temporary is created beside it, which
proves the folder is writable.  The job writes each output to its temporary.  On success
:meth:`commit` renames every temporary onto its final name; on any failure, ``Ctrl-C`` or
``SIGTERM`` :meth:`abort` removes the temporaries, the folders the transaction created, and
puts back any file an early :meth:`publish` replaced, so nothing new is left.

``publish`` renames one output early (a timeline writer may need to read its takes back at
their final paths); a file it replaces is kept as a hard-linked backup until the commit.

Later outputs (stems, MIDI) are just more ``add`` calls.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .atomic import clean_stale_temporaries, make_temporary
from .errors import UserError

_CAUSES = {
    errno.ENOSPC: "disk full (no space left on the device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a parent is not a folder",
    errno.EISDIR: "is a folder",
    errno.ELOOP: "symlink loop",
    errno.ENAMETOOLONG: "name too long",
    errno.ENOENT: "no such file or folder",
    errno.EIO: "input/output error (failing disk?)",
}


def os_error_cause(exc: OSError) -> str:
    """The real cause of an ``OSError`` in words, with its errno name: ``disk full (ENOSPC)``."""
    code = exc.errno
    if code is None:
        return str(exc) or type(exc).__name__
    words = _CAUSES.get(code) or (exc.strerror or str(exc)).strip()
    return f"{words} ({errno.errorcode.get(code, code)})"


def os_error_message(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """``PATH: cause`` for a one-line error (``path`` defaults to the error's own file)."""
    where = path if path is not None else (exc.filename or "")
    return f"{where}: {os_error_cause(exc)}" if where else os_error_cause(exc)


def resolved(path: str | os.PathLike) -> Path:
    """``path`` with every symlink resolved; a symlink loop is a one-line UserError."""
    try:
        return Path(path).resolve()
    except RuntimeError:                            # Python < 3.13: "Symlink loop from ..."
        raise UserError(f"{path}: symlink loop") from None
    except OSError as exc:
        raise UserError(os_error_message(exc, path)) from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file (same resolved path, or hard links)."""
    if resolved(a) == resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass
class _Entry:
    final: Path
    tmp: Path
    what: str
    published: bool = False
    backup: Path | None = None


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM while renaming, so a signal cannot stop a commit or abort half way
    (the signal is delivered right after)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class OutputTransaction:
    """The outputs of one job; use as ``with OutputTransaction(inputs) as tx: ...``.

    ``inputs``: every file the job reads (video, timeline, each media file the timeline
    references, model files); no output may be one of them.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike] = ()):
        self._inputs: list[tuple[Path, Path]] = []        # (as given, resolved)
        self._entries: dict[Path, _Entry] = {}            # resolved final -> entry
        self._created_dirs: list[Path] = []
        self.closed = False
        for p in inputs:
            self.add_input(p)

    # -- declaring ---------------------------------------------------------------------------
    def add_input(self, path: str | os.PathLike) -> None:
        self._inputs.append((Path(path), resolved(path)))

    @property
    def inputs(self) -> list[Path]:
        return [r for _, r in self._inputs]

    def check(self, final: str | os.PathLike, what: str = "output") -> Path:
        """Validate an output path without creating anything; return its resolved form."""
        final = Path(final)
        if not str(final) or final.name in ("", ".", ".."):
            raise UserError(f"{final}: not a file name for the {what}")
        real = resolved(final)
        if real.is_dir():
            raise UserError(f"{final}: is a folder; give a file name for the {what}")
        parent = real.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UserError(f"{final}: {parent} is not a folder")
        for given, real_in in self._inputs:
            if real == real_in or (real.exists() and real_in.exists() and same_file(real, real_in)):
                raise UserError(f"{final}: refusing to write the {what} over an input of this "
                                f"job ({given})")
        if real in self._entries:
            raise UserError(f"{final}: the same path is given for the {self._entries[real].what} "
                            f"and the {what}")
        return real

    def add(self, final: str | os.PathLike, what: str = "output") -> Path:
        """Declare an output; create its (empty) temporary now and return the temporary's path."""
        real = self.check(final, what)
        missing = []
        parent = real.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self._created_dirs.append(d)
            clean_stale_temporaries(real)
            tmp = make_temporary(real)
        except OSError as exc:
            raise UserError(f"{final}: cannot write the {what}: {os_error_cause(exc)}") from None
        self._entries[real] = _Entry(final=real, tmp=tmp, what=what)
        return tmp

    def temporary(self, final: str | os.PathLike) -> Path:
        return self._entries[resolved(final)].tmp

    # -- finishing ---------------------------------------------------------------------------
    def publish(self, final: str | os.PathLike) -> Path:
        """Rename one output onto its final name now; :meth:`abort` still takes it back."""
        entry = self._entries[resolved(final)]
        with _signals_held():
            self._publish(entry)
        return entry.final

    def _publish(self, entry: _Entry) -> None:
        if entry.published:
            return
        try:
            if not entry.tmp.is_file() or entry.tmp.stat().st_size == 0:
                raise RuntimeError(f"{entry.final}: the {entry.what} was declared but never written")
            os.chmod(entry.tmp, 0o666 & ~_umask())
            if entry.final.is_file():
                backup = entry.tmp.with_name(entry.tmp.name + ".old")
                os.link(entry.final, backup)
                entry.backup = backup
            os.replace(entry.tmp, entry.final)
        except OSError as exc:
            raise UserError(f"{entry.final}: cannot write the {entry.what}: "
                            f"{os_error_cause(exc)}") from None
        entry.published = True

    def commit(self) -> list[Path]:
        """Rename every output onto its final name (all or nothing); return the final paths."""
        with _signals_held():
            try:
                for entry in self._entries.values():
                    self._publish(entry)
            except BaseException:
                self._abort()
                raise
            for entry in self._entries.values():
                if entry.backup is not None:
                    with contextlib.suppress(OSError):
                        entry.backup.unlink()
            self.closed = True
        return [e.final for e in self._entries.values()]

    def abort(self) -> None:
        """Leave nothing new: remove temporaries and created folders, restore replaced files."""
        with _signals_held():
            self._abort()

    def _abort(self) -> None:
        for entry in reversed(list(self._entries.values())):
            with contextlib.suppress(OSError):
                if entry.published:
                    if entry.backup is not None:
                        os.replace(entry.backup, entry.final)
                    else:
                        entry.final.unlink()
                else:
                    entry.tmp.unlink()
        for d in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()                                # only if empty: never a user's file
        self.closed = True

    def _name_for(self, filename) -> Path | None:
        """The declared output a failing (temporary) file name belongs to."""
        if not filename:
            return None
        name = Path(os.fsdecode(filename)).name
        for entry in self._entries.values():
            if name.lstrip(".").startswith(entry.tmp.stem.lstrip(".")) or name == entry.final.name:
                return entry.final
        return None

    def __enter__(self) -> "OutputTransaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.commit()
            return
        self.abort()
        if isinstance(exc, OSError):
            final = self._name_for(exc.filename)
            if final is not None:
                raise UserError(f"{final}: cannot write: {os_error_cause(exc)}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
