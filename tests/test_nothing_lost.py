"""Nothing lost, ever (issue 12): one test per fault a new user found.

Every case generates its own media, runs the real CLI (a subprocess, or ``diffv2m.cli.main``
in this process where a monkeypatch injects the fault) and checks the exit code, the one
error line and that the folder holds exactly what it held before.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from diffv2m import assets, media
from faults import (assert_refused, call_cli, error_lines, needs_namespaces, read_only,
                    run_cli, run_cli_with_mount, snapshot, tiny_tmpfs)
from mediagen import make_tone, make_video

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

pytestmark = pytest.mark.skipif(not (assets.default_onnx_dir() / "manifest.json").exists(),
                                reason="the embedded default model's ONNX graphs are not built")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private feature cache (outside the job folder ``tmp_path / 'job'``)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIFFV2M_CACHE", str(folder))
    return folder


@pytest.fixture
def job(tmp_path):
    d = tmp_path / "job"
    d.mkdir()
    return d


def _video(folder: Path, name="clip.mp4", seconds=2.0, size=(64, 48)) -> Path:
    return make_video(folder / name, seconds=seconds, size=size, cut_times=(1.0,)).path


def _timeline(folder: Path, *, audio_only=False, seconds=2.0) -> Path:
    """A one-clip OTIO timeline over media/A.mp4 (plus an audio clip media/A.wav)."""
    (folder / "media").mkdir(exist_ok=True)
    _video(folder / "media", "A.mp4", seconds=seconds)
    make_tone(folder / "media" / "A.wav", seconds=seconds)
    rate, n = 24.0, int(seconds * 24)

    def clip(name, url):
        ref = otio.schema.ExternalReference(target_url=url,
                                            available_range=TR(RT(0, rate), RT(n, rate)))
        return otio.schema.Clip(name=name, media_reference=ref,
                                source_range=TR(RT(0, rate), RT(n, rate)))

    tracks = [otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio,
                                children=[clip("A-audio", "media/A.wav")])]
    if not audio_only:
        tracks.insert(0, otio.schema.Track(name="V1", children=[clip("A", "media/A.mp4")]))
    tl = otio.schema.Timeline(name="cut", tracks=tracks)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


# ----------------------------------------------------------------------------- data loss

@pytest.mark.parametrize("target", ["mux", "output", "take"])
def test_score_never_writes_onto_a_media_file_of_the_timeline(job, cache, target):
    """`score TIMELINE --mux PATH` with PATH one of the timeline's own media overwrote that
    video; the same for the output timeline and for a take whose name is a media file."""
    src = _timeline(job)
    media_file = job / "media" / "A.mp4"
    args = ["score", src, "--steps", "1", "-q", "-o", job / "out.otio"]
    if target == "mux":
        args += ["--mux", media_file]
    elif target == "output":
        os.symlink(media_file, job / "alias.otio")          # -o a symlink onto the video
        args[args.index("-o") + 1] = job / "alias.otio"
    else:                                                   # a take named like a media file
        os.replace(job / "media" / "A.wav", job / "media" / "cut.take-0.wav")
        tl = otio.adapters.read_from_file(str(src))
        tl.find_clips()[1].media_reference.target_url = "media/cut.take-0.wav"
        otio.adapters.write_to_file(tl, str(src))
        args += ["--take-dir", job / "media"]
    before = snapshot(job)
    res = run_cli(*args)
    assert_refused(res.returncode, res.stderr, job, before, "input of this job")


def test_generate_refuses_output_or_preview_onto_its_video(job, cache):
    video = _video(job)
    os.symlink(video, job / "link.wav")
    before = snapshot(job)
    for args in (["-o", job / "link.wav"], ["-o", job / "m.wav", "--mux", video],
                 ["-o", job / "m.wav", "--mux", job / "m.wav"]):
        rc, _, err = call_cli("generate", video, "--steps", "1", "-q", *args)
        assert_refused(rc, err, job, before)


# ----------------------------------------------------------------------------- tracebacks

@pytest.mark.parametrize("case", ["seed", "steps", "loop", "parent_is_file", "output_is_dir"])
def test_user_mistakes_are_one_line_before_any_work(job, cache, case):
    video = _video(job)
    out = job / "m.wav"
    args = ["generate", video, "-o", out, "--steps", "1", "-q"]
    if case == "seed":
        args += ["--seed", "-1"]
    elif case == "steps":
        args += ["--steps", "0"]
    elif case == "loop":
        os.symlink(job / "loop.mp4", job / "loop.mp4")
        args[1] = job / "loop.mp4"
    elif case == "parent_is_file":
        (job / "notes.txt").write_text("a file")
        args[3] = job / "notes.txt" / "m.wav"
    else:
        (job / "takes.wav").mkdir()
        args[3] = job / "takes.wav"
    before = snapshot(job)
    res = run_cli(*args)
    assert_refused(res.returncode, res.stderr, job, before)
    assert not cache.exists(), "the features were computed before the options were checked"


@needs_namespaces
def test_read_only_output_folder_is_one_line_naming_it(job, cache):
    video = _video(job)
    out_dir = job / "out"
    out_dir.mkdir()
    before = snapshot(job)
    res = run_cli_with_mount(read_only(out_dir), "generate", video, "-o", out_dir / "m.wav",
                             "--steps", "1", "-q")
    assert_refused(res.returncode, res.stderr, job, before, str(out_dir / "m.wav"),
                   "read-only file system")


@needs_namespaces
def test_full_disk_is_one_line_naming_the_output_and_leaves_nothing(job, cache):
    video = _video(job)
    out_dir = job / "out"
    out_dir.mkdir()
    before = snapshot(job)
    res = run_cli_with_mount(tiny_tmpfs(out_dir, "64k"), "generate", video, "-o",
                             out_dir / "m.wav", "--steps", "1", "-q")
    assert_refused(res.returncode, res.stderr, job, before, "m.wav", "disk full", "ENOSPC")


def test_full_disk_during_the_write_names_the_output(job, cache, monkeypatch):
    """Where mount namespaces are not allowed: the audio writer's disk fills up mid-write."""
    from diffv2m import media
    video = _video(job)

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(media, "_write_bytes", full_disk)
    before = snapshot(job)
    rc, _, err = call_cli("generate", video, "-o", job / "m.wav", "--steps", "1", "-q",
                          "--mux", job / "p.mp4")
    assert_refused(rc, err, job, before, str(job / "m.wav"), "disk full (no space left")


@needs_namespaces
@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_an_unusable_cache_folder_means_no_cache_and_one_warning(job, tmp_path, fault):
    """The cache is optional: a read-only or full cache folder warns once and the take is made;
    a full cache disk is not blamed on the bundled decoder.onnx."""
    video = _video(job)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    mount = read_only(cache_dir) if fault == "read_only" else tiny_tmpfs(cache_dir, "8k")
    res = run_cli_with_mount(mount, "generate", video, "-o", job / "m.wav", "--steps", "1",
                             "-q", env={"DIFFV2M_CACHE": str(cache_dir)})
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and str(cache_dir) in warnings[0], res.stderr
    assert ("read-only" if fault == "read_only" else "disk full") in warnings[0]
    assert "decoder.onnx" not in res.stderr and "Traceback" not in res.stderr
    assert media.probe(job / "m.wav").duration == pytest.approx(2.0, abs=0.05)


def test_read_only_output_folder_without_namespaces(job, cache, monkeypatch):
    """Where mount namespaces are not allowed: creating the temporary fails with EROFS."""
    from diffv2m import atomic
    video = _video(job)

    def read_only_mkstemp(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", kw.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only_mkstemp)
    before = snapshot(job)
    rc, _, err = call_cli("generate", video, "-o", job / "out" / "m.wav", "--steps", "1", "-q")
    assert_refused(rc, err, job, before, str(job / "out" / "m.wav"), "read-only file system")
    assert not cache.exists()


def test_a_cache_folder_that_cannot_exist_means_no_cache(job, tmp_path, monkeypatch):
    """``$DIFFV2M_CACHE`` under a regular file (as root, the one folder that cannot be made
    writable): one warning line, and the take is made."""
    (tmp_path / "plain-file").write_text("x")
    monkeypatch.setenv("DIFFV2M_CACHE", str(tmp_path / "plain-file" / "cache"))
    video = _video(job)
    res = run_cli("generate", video, "-o", job / "m.wav", "--steps", "1", "-q")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "warning: cache" in lines[0] and "ENOTDIR" in lines[0], res.stderr
    assert (job / "m.wav").is_file()


def test_full_cache_disk_under_onnxruntime_is_not_blamed_on_the_graph(tmp_path, monkeypatch,
                                                                      capsys):
    """onnxruntime saving its optimised graph into a full cache (``/dev/full``) opens the
    graph without the cache and warns, instead of 'decoder.onnx: cannot load this graph'."""
    import tempfile
    from diffv2m import cache
    from diffv2m.runtime import ort as runtime
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_on_full_disk(*a, **kw):
        d = Path(real_mkdtemp(*a, **kw))
        os.symlink("/dev/full", d / "model.onnx")          # every write: ENOSPC
        return str(d)

    monkeypatch.setattr(runtime.tempfile, "mkdtemp", mkdtemp_on_full_disk)
    monkeypatch.setattr(cache, "_cache_warned", [])
    backend = runtime.load_runtime(cache_dir=tmp_path / "cache")
    assert backend.config.sample_rate > 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "warning: cache" in lines[0] and "continuing without" in lines[0]
    assert "decoder.onnx" not in err


def test_features_extract_on_a_manifest_naming_a_missing_video(job):
    make_tone(job / "a.wav", seconds=1.0)
    manifest = job / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "c1", "video": "missing.mp4", "audio": "a.wav",
                                    "split": "train"}) + "\n")
    before = snapshot(job)
    res = run_cli("features", "extract", manifest, "-q")
    assert_refused(res.returncode, res.stderr, job, before, "missing.mp4", "no such file")


# ----------------------------------------------------------------------------- silent nonsense

@pytest.mark.parametrize("value", ["nan", "inf", "-1", "100"])
def test_cfg_must_be_finite_and_in_range(job, cache, value):
    video = _video(job)
    before = snapshot(job)
    rc, _, err = call_cli("generate", video, "-o", job / "m.wav", "--cfg", value, "-q")
    assert_refused(rc, err, job, before, "--cfg")


@pytest.mark.parametrize("command", ["generate", "score"])
def test_steps_have_a_stated_maximum(job, cache, command):
    video = _video(job)
    before = snapshot(job)
    rc, _, err = call_cli(command, video, "-o", job / ("m.wav" if command == "generate" else "m.otio"),
                          "--steps", "100000", "-q")
    assert_refused(rc, err, job, before, "--steps", "1000")


@pytest.mark.parametrize("command", ["generate", "score"])
@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_onnx_dir_missing_or_without_graphs_is_an_error_not_a_fallback(job, cache, command,
                                                                       problem):
    video = _video(job)
    onnx_dir = job / "graphs"
    if problem == "empty":
        onnx_dir.mkdir()
    before = snapshot(job)
    rc, _, err = call_cli(command, video, "-o", job / ("m.wav" if command == "generate" else "m.otio"),
                          "--onnx-dir", onnx_dir, "--steps", "1", "-q")
    assert_refused(rc, err, job, before, str(onnx_dir))


def test_timeline_with_only_audio_tracks_is_an_error(job, cache):
    src = _timeline(job, audio_only=True)
    before = snapshot(job)
    rc, _, err = call_cli("score", src, "-o", job / "out.otio", "--steps", "1", "-q")
    assert_refused(rc, err, job, before, "no video clips")


def test_score_video_range_past_the_end_is_refused_like_generate(job, cache):
    video = _video(job, seconds=2.0)
    before = snapshot(job)
    rc, _, err = call_cli("score", video, "--range", "0s-100s", "-o", job / "out.otio",
                          "--steps", "1", "-q")
    assert_refused(rc, err, job, before, "past the end")
    rc, _, err = call_cli("generate", video, "--start", "0", "--end", "100",
                          "-o", job / "m.wav", "--steps", "1", "-q")
    assert_refused(rc, err, job, before, "past the end")


# ----------------------------------------------------------------------------- half-done outputs

def test_refused_preview_leaves_no_take(job, cache):
    video = _video(job)
    before = snapshot(job)
    rc, _, err = call_cli("generate", video, "-o", job / "m.wav", "--mux", job / "p.avi", "-q",
                          "--steps", "1")
    assert_refused(rc, err, job, before, "p.avi")


def test_a_preview_failing_after_the_take_was_written_leaves_nothing(job, cache, monkeypatch):
    from diffv2m import errors
    video = _video(job)

    def failing_mux(*a, **kw):
        raise errors.UserError(f"{a[2]}: the encoder gave up")

    monkeypatch.setattr(media, "mux", failing_mux)
    before = snapshot(job)
    rc, _, err = call_cli("generate", video, "-o", job / "m.wav", "--mux", job / "p.mp4", "-q",
                          "--steps", "1")
    assert_refused(rc, err, job, before, "encoder gave up")


@pytest.mark.parametrize("out", ["out.xyz", "out.edl", "no_such_dir_file/../../x.otio"])
def test_score_checks_the_output_timeline_format_before_writing_takes(job, cache, out):
    src = _timeline(job)
    before = snapshot(job)
    rc, _, err = call_cli("score", src, "-o", job / out, "--steps", "1", "-q")
    if out.startswith("no_such"):
        assert rc == 0, err      # a path through a missing folder is fine: created, normalised
        return
    assert_refused(rc, err, job, before, out)


def test_score_writes_takes_timeline_and_preview_together(job, cache):
    """The success path of the transaction: every file appears, with no temporary beside."""
    src = _timeline(job)
    out = job / "new" / "cut.scored.otio"
    rc, stdout, err = call_cli("score", src, "-o", out, "--takes", "2", "--seed", "3",
                               "--steps", "1", "-q", "--mux", job / "new" / "p.mp4")
    assert rc == 0, err
    names = sorted(p.name for p in (job / "new").iterdir())
    assert names == ["cut.scored.otio", "cut.take-3.wav", "cut.take-4.wav", "p.mp4"]
    tl = otio.adapters.read_from_file(str(out))
    urls = [c.media_reference.target_url for c in tl.find_clips()]
    assert "cut.take-3.wav" in urls and "cut.take-4.wav" in urls
    assert media.read_audio_metadata(job / "new" / "cut.take-4.wav")["seed"] == 4


def test_failed_features_extract_and_export_leave_no_folder(job):
    make_tone(job / "a.wav", seconds=1.0)
    (job / "v.mp4").write_bytes(b"not a video at all" * 10)
    manifest = job / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "c1", "video": "v.mp4", "audio": "a.wav",
                                    "split": "train"}) + "\n")
    before = snapshot(job)
    res = run_cli("features", "extract", manifest, "--cache", job / "feats" / "deep", "-q")
    assert_refused(res.returncode, res.stderr, job, before, "v.mp4")
    pytest.importorskip("torch")
    (job / "broken.safetensors").write_bytes(b"\x00" * 64)
    before = snapshot(job)
    res = run_cli("export", "onnx", job / "broken.safetensors", "-o", job / "graphs")
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert snapshot(job) == before


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_a_killed_run_are_removed(job, cache):
    """A run killed (SIGKILL) mid-mux left ``.p.PID-x.part.mp4``: the next run removes it;
    a live run's temporary (this process) is left alone."""
    video = _video(job)
    dead = _dead_pid()
    stale = [job / f".p.{dead}-abc123.part.mp4", job / f"..p.{dead}-abc.part.{dead}-def.part.mp4",
             job / f".m.{dead}-zz.part.wav"]
    for s in stale:
        s.write_bytes(b"half a file")
    live = job / f".p.{os.getpid()}-live.part.mp4"
    live.write_bytes(b"being written")
    res = run_cli("generate", video, "-o", job / "m.wav", "--mux", job / "p.mp4", "-q",
                  "--steps", "1")
    assert res.returncode == 0, res.stderr
    assert not any(s.exists() for s in stale) and live.exists()
    assert sorted(p.name for p in job.iterdir()) == sorted(
        ["clip.mp4", "m.wav", "p.mp4", live.name])


def test_a_killed_runs_backup_is_put_back(job):
    """An output transaction killed after publishing a take over an older file (before its
    commit): the next run's clean-up puts the older file back (the job never finished)."""
    from diffv2m.atomic import clean_stale_temporaries
    final = job / "m.wav"
    dead = _dead_pid()
    (job / f".m.{dead}-q1.part.wav.old").write_bytes(b"the user's earlier take")
    final.write_bytes(b"the killed run's take")
    clean_stale_temporaries(final)
    assert final.read_bytes() == b"the user's earlier take"
    assert sorted(p.name for p in job.iterdir()) == ["m.wav"]


# ----------------------------------------------------------------------------- signals

def _restore_sigint() -> None:
    """The child starts as from a terminal: a suite run in the background (``cmd &``, a CI
    runner) ignores SIGINT, and Python keeps an inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_at(args, stage: str, sig: int, env=None) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "diffv2m", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, preexec_fn=_restore_sigint)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"diffv2m: {stage} "):
            time.sleep(0.05)
            proc.send_signal(sig)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    return proc.returncode, "".join(seen) + rest


@pytest.mark.parametrize("sig,stage,code", [(signal.SIGTERM, "sampling", 143),
                                            (signal.SIGTERM, "mux", 143),
                                            (signal.SIGINT, "sampling", 130)])
def test_sigterm_is_handled_like_sigint(job, cache, sig, stage, code):
    """A host or a render farm stops work with SIGTERM: one line, exit 143, nothing left
    (the take already written and the half-written preview are both removed)."""
    video = _video(job, seconds=8.0, size=(480, 272))
    before = snapshot(job)
    rc, err = _signal_at(["generate", video, "-o", job / "m.wav", "--mux", job / "p.mp4",
                          "--steps", "400" if stage == "sampling" else "1"], stage, sig)
    assert rc == code, err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert ("terminated" if code == 143 else "interrupted") in last and "Traceback" not in err
    assert snapshot(job) == before


# ----------------------------------------------------------------------------- poisoned cache

def _spoil(entry: Path, kind: str) -> bool:
    """Replace a cache entry by a folder or a truncated file; False for other kinds."""
    if entry.exists():
        entry.unlink()
    if kind == "directory":
        entry.mkdir()
        (entry / "x").write_text("?")
    elif kind == "truncated":
        entry.write_bytes(b"PK\x03\x04 truncated")
    return kind in ("directory", "truncated")


def _poison(entry: Path, kind: str) -> None:
    if not _spoil(entry, kind):
        a = dict(np.load(entry.with_suffix(".good.npz")))
        if kind == "wrong_shape":
            a["colour"] = a["colour"][:, :10]
        elif kind == "wrong_type":
            a["frames_1fps"] = a["frames_1fps"].astype(np.float64)
        elif kind == "wrong_scalar":
            a["seconds"] = np.array([1, 2, 3])
        with open(entry, "wb") as fh:
            np.savez(fh, **a)


def _cache_entries(cache: Path) -> tuple[Path, Path]:
    """The video's features entry and the model's conditions entry (semantic tokens, ODF)
    that one generation leaves in the cache: exactly one of each."""
    entries = sorted((cache / "features").glob("*.npz"))
    features = [p for p in entries if "frames_1fps" in np.load(p).files]
    conditions = [p for p in entries if set(np.load(p).files) == {"features_version",
                                                                  "semantic", "odf"}]
    assert len(entries) == 2 and len(features) == 1 and len(conditions) == 1, entries
    return features[0], conditions[0]


@pytest.mark.parametrize("kind", ["directory", "truncated", "wrong_shape"])
def test_a_poisoned_conditions_entry_is_discarded_and_rebuilt(job, cache, kind):
    video = _video(job)
    rc, _, err = call_cli("generate", video, "-o", job / "a.wav", "--steps", "1", "-q")
    assert rc == 0, err
    _, entry = _cache_entries(cache)
    good = dict(np.load(entry))
    if not _spoil(entry, kind):
        with open(entry, "wb") as fh:
            np.savez(fh, **{**good, "semantic": good["semantic"][:, :7]})
    for name in ("b.wav", "c.wav"):                # every later run works, the entry is healed
        rc, _, err = call_cli("generate", video, "-o", job / name, "--steps", "1", "-q")
        assert rc == 0 and "Traceback" not in err, err
    assert entry.is_file()
    healed = dict(np.load(entry))
    assert all(np.array_equal(healed[k], good[k]) for k in good)
    first = media.read_audio(job / "a.wav", 48000, mono=False)
    assert np.array_equal(media.read_audio(job / "b.wav", 48000, mono=False), first)


@pytest.mark.parametrize("kind", ["directory", "truncated", "wrong_shape", "wrong_type",
                                  "wrong_scalar"])
def test_a_poisoned_cache_entry_is_discarded_and_rebuilt(job, cache, kind):
    from diffv2m.features import video as vf
    video = _video(job)
    rc, _, err = call_cli("generate", video, "-o", job / "a.wav", "--steps", "1", "-q")
    assert rc == 0, err
    entry, _conditions = _cache_entries(cache)
    os.link(entry, entry.with_suffix(".good.npz"))
    _poison(entry, kind)
    for name in ("b.wav", "c.wav"):                # every later run works, the entry is healed
        rc, _, err = call_cli("generate", video, "-o", job / name, "--steps", "1", "-q")
        assert rc == 0 and "Traceback" not in err, err
    assert entry.is_file()
    vf.VideoFeatures.load(entry).check()
    first = media.read_audio(job / "a.wav", 48000, mono=False)
    assert np.array_equal(media.read_audio(job / "b.wav", 48000, mono=False), first)


# ----------------------------------------------------------------------------- progress

def test_progress_off_a_terminal_is_one_plain_line_per_stage(job, cache):
    video = _video(job)
    res = run_cli("generate", video, "-o", job / "m.wav", "--steps", "3", "--mux", job / "p.mp4")
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and "it/s" not in res.stderr and "step/s" not in res.stderr
    lines = res.stderr.splitlines()
    stages = [ln.split(" (")[0] for ln in lines]
    assert len(stages) == len(set(stages)) >= 4, res.stderr
    assert "diffv2m: sampling (3 steps)" in lines
