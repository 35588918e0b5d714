"""The command line: help lists the commands; user mistakes give one line, exit 2, no files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diffv2m.cli import COMMANDS
from mediagen import make_video


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "diffv2m", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_help_lists_every_subcommand():
    res = run("--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert f"  {name}" in res.stdout


def test_unknown_command_exits_2():
    res = run("frobnicate")
    assert res.returncode == 2 and "unknown command" in res.stderr


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    good = make_video(tmp / "good.mp4", seconds=2, size=(64, 48)).path
    data = good.read_bytes()
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    return {"missing": tmp / "missing.mp4", "truncated": truncated, "text": text, "empty": empty}


@pytest.mark.parametrize("case", ["missing", "truncated", "text", "empty"])
def test_generate_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    bad = _bad_inputs(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "music.wav"
    res = run("generate", str(bad), "-o", str(out))
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert bad.name in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_generate_zero_length_range_is_a_user_error(tmp_path):
    video = make_video(tmp_path / "v.mp4", seconds=2, size=(64, 48)).path
    res = run("generate", str(video), "--start", "1.0", "--end", "1.0", "-o", str(tmp_path / "m.wav"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.wav").exists()


def test_atomic_outputs_follow_the_umask(tmp_path):
    import os
    from diffv2m.atomic import atomic_write_text
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_generate_on_a_missing_gpu_or_with_onnx_is_one_line(tmp_path):
    """--device/--precision pick the torch backend; asking for CUDA where torch sees none,
    or for a precision with the ONNX backend, is a user error, and nothing is written."""
    import torch
    video = make_video(tmp_path / "v.mp4", seconds=2, size=(64, 48)).path
    out = tmp_path / "m.wav"
    res = run("generate", str(video), "--backend", "onnx", "--precision", "bf16", "-o", str(out))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--backend torch" in res.stderr and not out.exists()
    if not torch.cuda.is_available():
        res = run("generate", str(video), "--device", "cuda", "-o", str(out))
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
        assert "no CUDA GPU" in res.stderr and not out.exists()


def test_generate_leaves_at_once_with_its_output_complete_and_its_lines_flushed(tmp_path):
    """``generate`` skips the interpreter's teardown (diffv2m.cli.run): the take is complete,
    the lines printed into a pipe arrive, the exit code is the command's; a command outside
    QUICK_EXIT exits as usual."""
    from diffv2m import media
    from diffv2m.cli import QUICK_EXIT
    assert "generate" in QUICK_EXIT and "panel" not in QUICK_EXIT
    video = make_video(tmp_path / "v.mp4", seconds=2, size=(64, 48)).path
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
            "sys.argv = ['diffv2m'] + sys.argv[1:]\n"
            "from diffv2m.cli import run\n"
            "run()\n")
    res = subprocess.run([sys.executable, "-c", code, "generate", str(video), "-o",
                          str(tmp_path / "t.wav"), "--steps", "2", "--seed", "5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith(f"{tmp_path / 't.wav'}  (2.00 s, seed 5")
    assert "teardown ran" not in res.stderr
    assert media.read_audio_metadata(tmp_path / "t.wav")["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.wav", "v.mp4"]
    bad = subprocess.run([sys.executable, "-c", code, "generate", str(tmp_path / "no.mp4")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("no such file")
    usual = subprocess.run([sys.executable, "-c", code, "--version"],
                           capture_output=True, text=True, timeout=300)
    assert usual.returncode == 0 and "teardown ran" in usual.stderr
