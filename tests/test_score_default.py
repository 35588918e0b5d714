"""The embedded score model (``diffv2m generate``'s default): 48 kHz stereo takes with MIDI and
stems on the torch-free runtime, reproducible by seed, with torch and ONNX Runtime agreeing."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from diffv2m import media
from mediagen import make_video
from torch_blocker import run_without_torch

from embedded_models import SCORE_ONNX, needs_score_model

pytestmark = needs_score_model


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("score_default")
    return make_video(root / "clip.mp4", seconds=6, fps=Fraction(24), size=(128, 72),
                      cut_times=(1.5, 3.0, 4.5)).path


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _generate(*args):
    return subprocess.run([sys.executable, "-m", "diffv2m", "generate", *args],
                          capture_output=True, text=True, timeout=600)


def test_default_is_the_score_model_48k_stereo_with_midi_and_stems(video, tmp_path):
    out, mid, stems = tmp_path / "take.wav", tmp_path / "take.mid", tmp_path / "stems"
    res = _generate(str(video), "-o", str(out), "--midi", str(mid), "--stems", str(stems),
                    "--seed", "5", "--steps", "8", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    audio = media.read_audio(out, 48000, mono=False)
    assert audio.shape[0] == 2 and abs(audio.shape[1] - 6 * 48000) <= 1
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3
    meta = media.read_audio_metadata(out)
    assert meta["seed"] == 5 and meta["model"].startswith("model.safetensors:")
    assert meta["backend"].startswith("onnxruntime") and meta["notes"] > 0
    assert meta["cfg_scale"] == 2.0                          # the model's own default
    assert mid.read_bytes()[:4] == b"MThd"
    from diffv2m.score.midi import read_midi
    assert 70 <= meta["tempo_bpm"] <= 150                    # the take's own tempo ...
    assert read_midi(mid).tempo_bpm == pytest.approx(meta["tempo_bpm"], abs=1e-3)  # ... in the MIDI
    names = sorted(p.name for p in stems.iterdir())
    assert names == ["accompaniment.wav", "bass.wav", "drums.wav", "melody.wav"]
    total = sum(media.read_audio(stems / n, 48000, mono=False) for n in names)
    assert total.shape == audio.shape
    assert np.max(np.abs(total - audio)) < 2e-3                  # stems sum to the mix (16-bit)


def test_same_seed_same_bytes_torch_and_onnx(video, tmp_path):
    runs = {}
    for name, backend, seed in (("o1", "onnx", 2), ("o2", "onnx", 2), ("t", "torch", 2),
                                ("other", "onnx", 3)):
        out, mid = tmp_path / f"{name}.wav", tmp_path / f"{name}.mid"
        res = _generate(str(video), "-o", str(out), "--midi", str(mid), "--seed", str(seed),
                        "--steps", "8", "--backend", backend, "-q", "--no-cache")
        assert res.returncode == 0, res.stderr
        runs[name] = (out, mid)
    assert _sha(runs["o1"][0]) == _sha(runs["o2"][0]) and _sha(runs["o1"][1]) == _sha(runs["o2"][1])
    assert _sha(runs["o1"][1]) == _sha(runs["t"][1])                # the same notes
    a = media.read_audio(runs["o1"][0], 48000, mono=False)
    b = media.read_audio(runs["t"][0], 48000, mono=False)
    assert np.array_equal(a, b)                                      # the same samples
    assert _sha(runs["other"][1]) != _sha(runs["o1"][1])


def test_ensemble_and_sample_rate_overrides(video, tmp_path):
    out = tmp_path / "strings.wav"
    res = _generate(str(video), "-o", str(out), "--ensemble", "strings", "--sample-rate",
                    "44100", "--steps", "4", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    meta = media.read_audio_metadata(out)
    assert meta["ensemble"] == "strings"
    assert media.probe(out).audio_streams[0].sample_rate == 44100


def test_score_runtime_generates_without_torch(video, tmp_path):
    out = tmp_path / "nt.wav"
    script = (
        "import sys\n"
        "from diffv2m.cli import main\n"
        f"rc = main(['generate', {str(video)!r}, '-o', {str(out)!r}, '--midi', "
        f"{str(tmp_path / 'nt.mid')!r}, '--steps', '3', '-q', '--no-cache'])\n"
        "assert rc == 0, rc\n")
    res = run_without_torch(script)
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.is_file() and (tmp_path / "nt.mid").is_file()


def test_manifest_names_the_score_family():
    man = json.loads((SCORE_ONNX / "manifest.json").read_text())
    assert man["config"]["latent_family"] == "score"
    assert {"semantic_encoder", "rhythm_predictor", "dit", "decoder"} <= set(man["graphs"])
