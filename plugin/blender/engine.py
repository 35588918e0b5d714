"""The two engines that make a take for a :class:`~.picture.Span`, and the job that runs one.

bpy-free (tested without Blender).  Both engines read the same input, so they give the same
take: a span that is one strip's footage at the scene's rate is a plain video range (the
in-process engine runs :class:`diffv2m.plugin.session.ScoringSession` on the file, the
external one ``diffv2m generate FILE --start S --end E``); anything else is written once as
an OTIO timeline (:func:`.picture.write_timeline`) that the session, or ``diffv2m score``,
reads.

* ``in-process``: the project's torch-free runtime (ONNX Runtime) inside Blender's Python.
  The backend and each span's session are kept, so a new take reuses the span's features.
* ``external``: a ``diffv2m`` executable (another Python environment); cancelling terminates
  it (it writes takes by temp file + rename, so nothing half-written stays).

:class:`TakeJob` runs one engine call on a worker thread; ``poll()`` (called from a
``bpy.app.timers`` callback on Blender's main thread, or by a test) returns its state.
Cancelling makes the next progress report raise :class:`diffv2m.errors.Cancelled`: the
in-process sampler stops at the end of the step in flight (as the Qt panel's worker does).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from diffv2m.errors import Cancelled, UserError
from diffv2m.progress import Progress

from .picture import Span, write_timeline

ENGINES = ("in-process", "external")


@dataclass
class Request:
    """One take to make."""
    span: Span
    seed: int = 0
    steps: int = 0                      # 0: the model's own step count
    cfg_scale: float = 0.0              # 0: the model's own guidance
    sampler: str = "dpmpp-2m"
    style: int = 1
    mode: str | None = None             # score model: None = the picture's
    data_dir: Path = Path(".")
    engine: str = "in-process"
    executable: str = "diffv2m"
    onnx_dir: str | None = None
    threads: int | None = None

    def settings(self):
        from diffv2m.synthesis import Settings
        return Settings(seed=int(self.seed), steps=int(self.steps) if self.steps > 0 else None,
                        cfg_scale=float(self.cfg_scale) if self.cfg_scale > 0 else None,
                        sampler=self.sampler, cls=int(self.style), mode=self.mode)

    @property
    def take_dir(self) -> Path:
        return Path(self.data_dir) / "takes" / self.span.key()


@dataclass
class Result:
    """A take on disk and what made it (what becomes the sound strip's properties)."""
    path: Path
    seed: int
    duration: float
    metadata: dict[str, Any] = field(default_factory=dict)


def model_manifest(onnx_dir: str | None) -> dict[str, Any]:
    """``{"model", "graph_hashes"}`` of the exported graphs both engines run."""
    from diffv2m import assets
    folder = Path(onnx_dir) if onnx_dir else assets.model_onnx_dir(assets.DEFAULT_MODEL)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder / 'manifest.json'}: cannot read the model's manifest "
                        f"({exc.__class__.__name__})") from None
    return {"model": manifest.get("model_id", ""),
            "graph_hashes": {k: g.get("sha256", "") for k, g in manifest.get("graphs", {}).items()}}


def _describe(req: Request, path: Path) -> Result:
    from diffv2m import media
    meta = media.read_audio_metadata(path)
    meta.update(model_manifest(req.onnx_dir))
    meta["engine"] = req.engine
    meta["retimed"] = bool(req.span.retimed)
    info = media.probe(path)
    return Result(path=path, seed=int(meta.get("seed", req.seed)), duration=float(info.duration),
                  metadata=meta)


# -- in-process ------------------------------------------------------------------------------
_backends: dict[tuple, Any] = {}
_sessions: dict[tuple, Any] = {}
_lock = threading.Lock()


def _backend(req: Request):
    key = (req.onnx_dir, req.threads)
    with _lock:
        if key not in _backends:
            from diffv2m.runtime.ort import load_runtime
            _backends[key] = load_runtime(req.onnx_dir, threads=req.threads)
        return _backends[key]


def _session(req: Request):
    """The span's scoring session (kept: a new seed reuses its features)."""
    from diffv2m.plugin.session import ScoringSession
    key = (req.span.key(), req.onnx_dir, req.threads, str(req.data_dir))
    with _lock:
        if key in _sessions:
            return _sessions[key]
    backend = _backend(req)
    cache = Path(req.data_dir) / "cache"
    single = req.span.single_file()
    if single is not None:
        path, start, end = single
        session = ScoringSession(path, backend, cache_dir=cache, take_dir=req.take_dir)
        session.select_seconds(start, end)
    else:
        otio_path = write_timeline(req.span, Path(req.data_dir) / "spans")
        session = ScoringSession(otio_path, backend, cache_dir=cache, take_dir=req.take_dir)
        session.select(range=("0", str(req.span.frames)))
    with _lock:
        _sessions[key] = session
    return session


def run_in_process(req: Request, progress: Progress | None = None) -> Result:
    req.take_dir.mkdir(parents=True, exist_ok=True)
    session = _session(req)
    session.takes = [t for t in session.takes if t.path.exists()]
    record = session.generate(req.settings(), progress=progress)
    return _describe(req, record.path)


def forget_sessions() -> None:
    """Drop kept backends and sessions (add-on unregister)."""
    with _lock:
        _sessions.clear()
        _backends.clear()


# -- external --------------------------------------------------------------------------------
def external_command(req: Request) -> tuple[list[str], Path | None]:
    """The ``diffv2m`` command line for ``req`` and the take it writes (None: read stdout)."""
    common = ["--seed", str(int(req.seed)), "--sampler", req.sampler,
              "--style", str(int(req.style))]
    if req.steps > 0:
        common += ["--steps", str(int(req.steps))]
    if req.cfg_scale > 0:
        common += ["--cfg", repr(float(req.cfg_scale))]
    if req.mode:
        common += ["--mode", req.mode]
    if req.onnx_dir:
        common += ["--onnx-dir", str(req.onnx_dir)]
    if req.threads:
        common += ["--threads", str(int(req.threads))]
    single = req.span.single_file()
    req.take_dir.mkdir(parents=True, exist_ok=True)
    if single is not None:
        path, start, end = single
        out = _free_take_path(req.take_dir / f"{Path(path).stem}.take-{int(req.seed)}.wav")
        cmd = [req.executable, "generate", str(path), "--start", repr(start), "--end", repr(end),
               "-o", str(out), "--backend", "onnx", "-q", *common]
        return cmd, out
    otio_path = write_timeline(req.span, Path(req.data_dir) / "spans")
    scored = Path(req.data_dir) / "spans" / f"{otio_path.stem}.scored-{int(req.seed)}.otio"
    cmd = [req.executable, "score", str(otio_path), "--range", f"0-{req.span.frames}",
           "-o", str(scored), "--take-dir", str(req.take_dir), "-q", *common]
    return cmd, None


def _free_take_path(path: Path) -> Path:
    k, out = 2, path
    while out.exists():
        out = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return out


def run_external(req: Request, progress: Progress | None = None) -> Result:
    cmd, out = external_command(req)
    env = dict(os.environ)
    env.setdefault("DIFFV2M_CACHE", str(Path(req.data_dir) / "cache"))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    except OSError as exc:
        raise UserError(f"{req.executable}: cannot run the external diffv2m ({exc.strerror}); "
                        "set its path in the add-on preferences") from None
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if progress is not None:
                progress("external diffv2m", int(time.monotonic() - t0), 0)
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        lines = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
        msg = lines[-1] if lines else f"exit status {proc.returncode}"
        msg = re.sub(r"^diffv2m: error: ", "", msg)
        raise UserError(f"external diffv2m failed: {msg}")
    if out is None:
        first = next((ln for ln in stdout.splitlines() if ".wav" in ln), "")
        out = Path(first.split("  (")[0].strip())
    if not out.is_file():
        raise UserError(f"external diffv2m wrote no take (expected {out})")
    return _describe(req, out)


def run(req: Request, progress: Progress | None = None) -> Result:
    if req.engine == "external":
        return run_external(req, progress)
    if req.engine != "in-process":
        raise UserError(f"unknown engine {req.engine!r}; choose one of {', '.join(ENGINES)}")
    return run_in_process(req, progress)


# -- the job ---------------------------------------------------------------------------------
class TakeJob:
    """``run(request)`` on a worker thread; ``poll()`` from the main thread.

    ``state``: "running" | "done" | "failed" | "cancelled"; ``result`` / ``error`` once
    finished; ``stage, done, total`` the latest progress report.
    """

    def __init__(self, request: Request, runner: Callable[[Request, Progress], Result] = run):
        self.request = request
        self._runner = runner
        self._cancel = threading.Event()
        self.state = "running"
        self.result: Result | None = None
        self.error = ""
        self.progress: tuple[str, int, int] = ("starting", 0, 0)
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="diffv2m-take", daemon=True)

    def start(self) -> "TakeJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def _report(self, stage: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled("take cancelled")
        self.progress = (str(stage), int(done), int(total))

    def _run(self) -> None:
        try:
            self._report("starting", 0, 0)
            result = self._runner(self.request, self._report)
            if self._cancel.is_set():
                raise Cancelled("take cancelled")
            self.result, self.state = result, "done"
        except Cancelled:
            self.state = "cancelled"
        except UserError as exc:
            self.error, self.state = str(exc), "failed"
        except BaseException as exc:  # noqa: BLE001 - the host must get a message, not a crash
            self.error, self.state = f"{type(exc).__name__}: {exc}", "failed"

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive() and self.state != "running"

    def status_text(self) -> str:
        stage, done, total = self.progress
        if total > 0:
            return f"Diff-V2M: {stage} {done}/{total}"
        return f"Diff-V2M: {stage}" + (f" ({done} s)" if done else "")
