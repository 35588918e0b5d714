"""Write outputs through a temporary file in the same folder, renamed into place on success.

An interrupted or failed write never leaves a half-written file under the final name, and an
existing file is only replaced once the new one is complete.

Temporaries are named ``.STEM.PID-RANDOM.partSUFFIX`` beside the final file (the suffix is
kept, so writers that pick a format from it still work).  The process id lets a later run
tell a temporary of a run that was killed (``SIGKILL``, power loss) from one that is still
being written by a concurrent run: :func:`clean_stale_temporaries` removes only the former.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


def temporary_prefix(final: Path) -> str:
    """The name prefix of this process's temporaries for ``final``."""
    return f".{final.stem}.{os.getpid()}-"


def temporary_suffix(final: Path) -> str:
    return f".part{final.suffix}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # somebody else's live process
        return True
    return True


def clean_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Remove temporaries of ``final`` left by runs that no longer exist; return them.

    Temporaries of live processes (a concurrent run, or this one) are left alone.
    """
    final = Path(final)
    # ".STEM.PID-X.part.SUF", and temporaries of such a temporary ("..STEM.PID-X.part.PID-Y...")
    # A backup (".old") of a file an output transaction replaced before it was killed is put
    # back: the job never finished, so the user's earlier file wins.
    pattern = re.compile(r"^\.+" + re.escape(f"{final.stem}.") + r"(\d+)-.*"
                         + re.escape(temporary_suffix(final)) + r"(\.old)?$")
    removed = []
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if m.group(2):
                os.replace(entry.path, final)
            elif entry.is_dir(follow_symlinks=False):
                import shutil
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def make_temporary(final: str | os.PathLike) -> Path:
    """Create an empty temporary beside ``final`` (parents must exist) and return its path."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(final), suffix=temporary_suffix(final),
                               dir=final.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` and cancellation included) the temporary file is
    removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(final)
    tmp_path = make_temporary(final)
    try:
        yield tmp_path
        if tmp_path.exists():               # mkstemp makes 0600 files: follow the umask instead
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
