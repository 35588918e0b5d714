"""Helpers for the fault tests: run the CLI, snapshot a folder, full and read-only disks.

A full disk and a read-only folder are real ones: a tiny tmpfs, or a read-only bind mount,
inside a private mount namespace (``unshare -m``; the tests run as root, where chmod cannot
make a folder unwritable).  Where namespaces are not permitted those tests skip, and the
monkeypatched variants in the test files still exercise the same code paths.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffv2m", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def call_cli(*args) -> tuple[int, str, str]:
    """``diffv2m ARGS`` in this process (cheap: no interpreter start): (rc, stdout, stderr)."""
    from diffv2m.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:           # argparse: exit 2 with its usage line
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def error_lines(stderr: str) -> list[str]:
    """The stderr lines that are not progress or warnings."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith(("diffv2m: warning:",)) and
            not (ln.startswith("diffv2m: ") and ln.rstrip().endswith(("steps)", "step)")))]


def snapshot(root: Path) -> dict[str, str]:
    """Every file (hidden ones too) under ``root`` -> sha256; folders -> 'dir'."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_refused(rc: int, stderr: str, root: Path, before: dict, *names: str) -> None:
    """Exit 2, exactly one error line (naming each of ``names``), no traceback, and the folder
    exactly as it was (every input byte-identical, nothing new)."""
    assert rc == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    for n in names:
        assert n in lines[0], lines[0]
    assert snapshot(root) == before


_NS: dict[str, bool] = {}


def namespaces_available() -> bool:
    if "ok" not in _NS:
        probe = Path("/tmp") / f"diffv2m-ns-probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        try:
            res = subprocess.run(["unshare", "-m", "sh", "-c",
                                  f"mount -t tmpfs -o size=16k tmpfs {probe}"],
                                 capture_output=True, timeout=30)
            _NS["ok"] = res.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _NS["ok"] = False
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    return _NS["ok"]


needs_namespaces = pytest.mark.skipif(
    shutil.which("unshare") is None or not namespaces_available(),
    reason="private mount namespaces (unshare -m) are not permitted here")


def run_cli_with_mount(mount_sh: str, *args, env: dict | None = None,
                       timeout: float = 300) -> subprocess.CompletedProcess:
    """``diffv2m ARGS`` in a private mount namespace after the shell commands ``mount_sh``."""
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "diffv2m", *map(str, args)])
    return subprocess.run(["unshare", "-m", "sh", "-c", f"{mount_sh} && exec {cmd}"],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def tiny_tmpfs(folder: Path, size: str = "64k") -> str:
    return f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))}"


def read_only(folder: Path) -> str:
    f = shlex.quote(str(folder))
    return f"mount --bind {f} {f} && mount -o remount,bind,ro {f}"
