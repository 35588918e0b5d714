"""The main job on the embedded default model: video in, music out, reproducible by seed."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from diffv2m import assets, media
from diffv2m.cli import main as cli
from mediagen import make_video

pytestmark = pytest.mark.skipif(not assets.default_checkpoint().exists(),
                                reason="the embedded default model is not built")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    return make_video(root / "clip.mp4", seconds=12, fps=Fraction(24), size=(128, 72),
                      cut_times=(2.0, 4.5, 7.0, 9.5)).path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.numerics
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_same_seed_same_file_other_seed_other_music(video, tmp_path, backend):
    if backend == "onnx" and not (assets.default_onnx_dir() / "manifest.json").exists():
        pytest.skip("the embedded model's ONNX graphs are not built")
    outs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        outs[name] = tmp_path / f"{name}.wav"
        assert cli(["generate", str(video), "-o", str(outs[name]), "--seed", str(seed),
                    "--steps", "10", "--backend", backend, "-q", "--no-cache"]) == 0
    assert sha(outs["a"]) == sha(outs["b"])
    audio_a = media.read_audio(outs["a"], 24000)
    audio_c = media.read_audio(outs["c"], 24000)
    assert abs(audio_a.shape[1] / 24000 - 12.0) < 0.01          # the video's length
    assert np.sqrt(np.mean(audio_a ** 2)) > 1e-3                  # not silent
    assert not np.allclose(audio_a, audio_c, atol=1e-3)
    meta = media.read_audio_metadata(outs["a"])
    assert meta["seed"] == 3 and meta["steps"] == 10 and meta["model"]


# The kernel-path switches torch reads at start-up (the SIMD level of ATen's own kernels, the
# highest ISA oneDNN may use): together they make a second, always different, path on x86-64.
KERNEL_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
OTHER_PATH = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}
LSB = 1 / 32768                 # one step of the 16-bit PCM the WAV holds


@pytest.mark.numerics
def test_other_cpu_kernels_same_music_within_a_few_lsb(video, tmp_path):
    """The cross-machine guarantee (README, "Reproducibility"): same seed on the same machine,
    kernels and threads gives the same bytes (the test above); on other CPU kernels the bytes may
    differ but the music stays within 8 LSB of the 16-bit WAV. Measured here (AMD EPYC, AVX-512;
    seed 3, 10 steps, one thread) against the native path: ATEN_CPU_CAPABILITY=default / avx2 /
    ONEDNN_MAX_CPU_ISA=AVX2 / 2 threads all differ by at most 1 LSB (3.05e-5), SNR >= 97 dB."""
    native = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    outs = {}
    for name, env in (("native", native), ("other", {**native, **OTHER_PATH})):
        outs[name] = tmp_path / f"{name}.wav"
        res = subprocess.run([sys.executable, "-m", "diffv2m", "generate", str(video), "-o",
                              str(outs[name]), "--seed", "3", "--steps", "10", "--end", "6",
                              "--backend", "torch", "--threads", "1", "-q", "--no-cache"],
                             capture_output=True, text=True, timeout=600, env=env)
        assert res.returncode == 0, res.stderr[-3000:]
    a = media.read_audio(outs["native"], 24000)
    b = media.read_audio(outs["other"], 24000)
    assert a.shape == b.shape and np.sqrt(np.mean(a ** 2)) > 1e-3
    diff = np.abs(a - b).max()
    print(f"native vs {OTHER_PATH}: max |diff| {diff / LSB:.0f} LSB, bytes "
          f"{'identical' if sha(outs['native']) == sha(outs['other']) else 'differ'}")
    assert diff <= 8 * LSB, diff / LSB


def test_range_and_preview_mux(video, tmp_path):
    out, mp4 = tmp_path / "r.wav", tmp_path / "preview.mp4"
    assert cli(["generate", str(video), "-o", str(out), "--start", "2", "--end", "8",
                "--steps", "6", "--mux", str(mp4), "-q", "--no-cache"]) == 0
    assert abs(media.read_audio(out, 24000).shape[1] / 24000 - 6.0) < 0.01
    info = media.probe(mp4)
    assert info.has_video and info.audio_streams and abs(info.duration - 6.0) < 0.2


@pytest.mark.numerics
def test_torch_backend_reduced_precision_is_close_but_not_fp32():
    """``precision="bf16"`` runs the networks under autocast (here on the CPU): the DiT's
    velocity stays close to fp32's, comes back as float32, and an unknown precision is refused."""
    from diffv2m.errors import UserError
    from diffv2m.export.onnx import example_inputs
    from diffv2m.pipeline import load_backend
    full = load_backend()
    half = load_backend(precision="bf16")
    assert half.name == "torch-cpu-bf16"
    cfg = full.config
    inp = example_inputs("dit", cfg, batch=2, seconds=cfg.window_seconds, frames=cfg.latent_frames)
    a, b = full.denoise(**inp), half.denoise(**inp)
    assert b.dtype == np.float32 and b.shape == a.shape
    rel = np.abs(a - b).max() / np.abs(a).max()
    # measured 0.0080-0.0086 under ATEN_CPU_CAPABILITY=default/avx2/avx512, ONEDNN_MAX_CPU_ISA=AVX2
    assert 0 < rel < 0.1, rel
    with pytest.raises(UserError, match="unknown precision"):
        load_backend(precision="fp8")
