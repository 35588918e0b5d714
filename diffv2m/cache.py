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


def known_sha256(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """:func:`file_sha256` of ``path``, remembered under ``cache_dir`` (default
    :func:`default_cache_dir`) by the file's identity: its resolved path, device, inode, size,
    and modification and change times in ns.  A file unchanged since it was last hashed is not
    read again (the exported graphs are checked on every load: ~14 MB, 0.02-0.03 s a process).
    Any write to a file moves its change time, which no program can set back, so a modified
    file is always hashed anew.  The cache is optional: without a writable one, every call
    hashes.  (A check against stale or damaged files, not against someone who can write the
    user's cache folder.)"""
    p = Path(path)
    st = os.stat(p)
    ident = "\0".join(map(str, (os.path.realpath(p), st.st_dev, st.st_ino, st.st_size,
                                 st.st_mtime_ns, st.st_ctime_ns)))
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stamp = root / "sha256" / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.txt"
    try:
        known = stamp.read_text().strip()
        if len(known) == 64:
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = file_sha256(p)
    try:
        from diffv2m.atomic import atomic_path
        with atomic_path(stamp) as tmp:
            tmp.write_text(digest)
    except OSError:                     # no cache: the digest is right all the same
        pass
    return digest


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
