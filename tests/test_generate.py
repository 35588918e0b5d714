"""The main job on the embedded default model: video in, music out, reproducible by seed."""
from __future__ import annotations

import hashlib
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


def test_range_and_preview_mux(video, tmp_path):
    out, mp4 = tmp_path / "r.wav", tmp_path / "preview.mp4"
    assert cli(["generate", str(video), "-o", str(out), "--start", "2", "--end", "8",
                "--steps", "6", "--mux", str(mp4), "-q", "--no-cache"]) == 0
    assert abs(media.read_audio(out, 24000).shape[1] / 24000 - 6.0) < 0.01
    info = media.probe(mp4)
    assert info.has_video and info.audio_streams and abs(info.duration - 6.0) < 0.2


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
    assert 0 < rel < 0.1, rel
    with pytest.raises(UserError, match="unknown precision"):
        load_backend(precision="fp8")
