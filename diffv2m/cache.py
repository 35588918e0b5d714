"""Content hashes and the cache folder: features, optimised ONNX graphs and TensorRT engines
are cached by content under :func:`default_cache_dir` (``$DIFFV2M_CACHE``, else
``$XDG_CACHE_HOME/diffv2m``).  The cache is optional: a folder that cannot be written is said
once and skipped, never a failed job."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, hex (read in 1 MiB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """The cache root: ``$DIFFV2M_CACHE``, else ``$XDG_CACHE_HOME/diffv2m`` (~/.cache)."""
    root = os.environ.get("DIFFV2M_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "diffv2m")
    return Path(root)


_cache_warned: list[str] = []


def warn_cache_unusable(folder: str | os.PathLike, exc: OSError) -> None:
    """Say once per process, on one line, that the (optional) cache is not used and why."""
    import sys
    from diffv2m.output_transaction import os_error_cause
    if _cache_warned:
        return
    _cache_warned.append(str(folder))
    print(f"diffv2m: warning: cache {folder}: {os_error_cause(exc)}; continuing without the "
          "cache", file=sys.stderr, flush=True)


def usable_cache_dir(folder: str | os.PathLike | None = None) -> Path | None:
    """``folder`` (default: :func:`default_cache_dir`) when a file can be created in it, else
    ``None`` after one warning line: the cache is optional, a read-only or full cache folder
    never stops a job."""
    import tempfile
    folder = Path(folder) if folder is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-") as fh:
            fh.write(b"x")
            fh.flush()
    except OSError as exc:
        warn_cache_unusable(folder, exc)
        return None
    return folder
