"""The score family end to end on a tiny corpus: the score autoencoder, the same prior on its
latents, ONNX export + parity, and ``diffv2m generate`` with --midi / --stems."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tiny_corpus
from diffv2m import media
from diffv2m.cli import main as cli
from diffv2m.config import ModelConfig, ScoreAutoencoderConfig, resolve_config
from diffv2m.models.score_autoencoder import ScoreAutoencoder, score_loss
from diffv2m.train.state import read_log

pytestmark = pytest.mark.skipif(subprocess.run(["which", "fluidsynth"], capture_output=True)
                                .returncode != 0, reason="fluidsynth is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus.build_score(tmp_path_factory.mktemp("score_corpus"))


@pytest.fixture(scope="module")
def autoencoder(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("score_ae")
    assert cli(["train", "autoencoder", str(corpus), "--run-dir", str(run), "--config",
                str(corpus.parent / "tiny_score.json"), "--steps", "60", "--batch-size", "4",
                "--segment-seconds", "2", "--lr", "1e-2", "--save-every", "30",
                "--val-samples", "1"]) == 0
    return run


@pytest.fixture(scope="module")
def model(corpus, autoencoder, tmp_path_factory):
    run = tmp_path_factory.mktemp("score_prior")
    assert cli(["train", "prior", str(corpus), "--autoencoder",
                str(autoencoder / "autoencoder.safetensors"), "--run-dir", str(run),
                "--steps", "4", "--batch-size", "2", "--warmup", "2", "--save-every", "2",
                "--val-samples", "0"]) == 0
    # the picture's mood reader beside the model: the exporter and the torch backend find it
    assert cli(["train", "mood", str(corpus), "--config", str(corpus.parent / "tiny_score.json"),
                "--out", str(run / "mood_reader.safetensors")]) == 0
    return run / "model.safetensors"


@pytest.fixture(scope="module")
def onnx_dir(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("score_onnx")
    assert cli(["export", "onnx", str(model), "-o", str(out)]) == 0
    return out


def test_config_family_round_trips():
    cfg = resolve_config("score")
    assert cfg.latent_family == "score" and isinstance(cfg.autoencoder, ScoreAutoencoderConfig)
    back = ModelConfig.from_json(cfg.to_json())
    assert back == cfg and back.latent_frames == 120 and back.autoencoder.latent_rate == 12.0
    assert resolve_config("small").latent_family == "audio"
    assert resolve_config("small").default_cfg_scale == 3.0 and cfg.default_cfg_scale == 2.0
    assert resolve_config("small").default_steps == 25 and cfg.default_steps == 15


def test_score_autoencoder_shapes_and_probabilities():
    cfg = ScoreAutoencoderConfig(hidden=16, latent_dim=4)
    ae = ScoreAutoencoder(cfg)
    x = (torch.rand(2, 4, 3, cfg.pitches, 47) > 0.95).float()          # odd length: padded
    mean, logvar = ae.encode(x)
    assert mean.shape == logvar.shape == (2, 4, 24)
    p = ae.decode(mean)
    assert p.shape == (2, 4, 3, cfg.pitches, 48)
    assert float(p.detach().min()) >= 0.0 and float(p.detach().max()) <= 1.0
    assert float(p[:, :, 0].detach().mean()) < 0.1                          # starts near "no note"


def test_a_few_training_steps_reduce_the_loss():
    """Over three seeds, 60 Adam steps on one fixed batch lower every loss term that has a
    target (mean of the last 5 steps < 0.8 x the first 5)."""
    cfg = ScoreAutoencoderConfig(hidden=32, latent_dim=8)
    for seed in range(3):
        torch.manual_seed(seed)
        ae = ScoreAutoencoder(cfg)
        x = torch.zeros(4, 4, 3, cfg.pitches, 48)
        g = torch.Generator().manual_seed(seed)
        for b in range(4):                           # music-like: a few pitches on a beat grid
            for t in range(4):
                period = int(torch.randint(3, 9, (1,), generator=g))
                for k, f in enumerate(range(0, 48, period)):
                    p = int(torch.randint(cfg.pitches, (1,), generator=g)) if k % 2 == 0 else p
                    x[b, t, 0, p, f] = 1.0
                    x[b, t, 1, p, f:f + period - 1] = 1.0
                    x[b, t, 2, p, f] = 0.6
        opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
        hist = []
        for _ in range(60):
            mean, logvar = ae.encode(x)
            terms = score_loss(ae.decode_logits(mean), x, mean, logvar)
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            hist.append({k: v.item() for k, v in terms.items()})
        for k in ("total", "onset", "frame"):
            first = np.mean([h[k] for h in hist[:5]])
            last = np.mean([h[k] for h in hist[-5:]])
            assert last < 0.8 * first, (seed, k, first, last)


def test_autoencoder_cli_run(autoencoder):
    log = read_log(autoencoder / "loss.jsonl")
    assert [r["step"] for r in log][-1] == 60
    assert {"onset", "frame", "velocity", "kl"} <= set(log[0])
    first = np.mean([r["loss"] for r in log[:5]])
    last = np.mean([r["loss"] for r in log[-5:]])
    assert last < first
    summary = json.loads((autoencoder / "summary.json").read_text())
    assert 0.0 <= summary["val"]["note_f1"] <= 1.0


def test_prior_trains_on_score_latents(model, tmp_path):
    from diffv2m.models.checkpoint import load_checkpoint
    net, cfg, _ = load_checkpoint(model)
    assert cfg.latent_family == "score" and isinstance(net.autoencoder, ScoreAutoencoder)
    run = model.parent
    log = read_log(run / "loss.jsonl")
    assert len(log) == 4 and all(np.isfinite(r["loss_v"]) for r in log)
    with np.load(run / "prior_data.npz") as z:
        assert z["latents"].shape[1:] == (4, cfg.latent_frames)      # 4 s x 12 frames/s
        assert z["cues"].shape[-1] == cfg.latent_frames


def test_explore_latents_on_score_autoencoder(corpus, autoencoder, tmp_path):
    out = tmp_path / "latents.png"
    assert cli(["explore-latents", str(corpus), "--autoencoder",
                str(autoencoder / "autoencoder.safetensors"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_score_decoder_parity(model, onnx_dir):
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.pipeline import load_backend
    man = json.loads((onnx_dir / "manifest.json").read_text())
    assert {"dit", "decoder", "encoder"} <= set(man["graphs"])
    assert man["graphs"]["decoder"]["outputs"][0]["name"] == "roll"
    assert man["parity"]["decoder"]["rel_err"] < 1e-4
    ort_b, torch_b = load_runtime(onnx_dir), load_backend(model)
    z = np.random.default_rng(0).standard_normal((2, 4, 30)).astype(np.float32)
    a, b = ort_b.decode(z), torch_b.decode(z)
    assert a.shape == b.shape == (2, 4, 3, 72, 60)
    np.testing.assert_allclose(a, b, atol=1e-5)
    roll = (np.random.default_rng(1).random((1, 4, 3, 72, 36)) > 0.97).astype(np.float32)
    with torch.no_grad():
        ref = torch_b.model.autoencoder.encode_latent(torch.from_numpy(roll)).numpy()
    np.testing.assert_allclose(ort_b.encode_latent(roll), ref, atol=1e-5)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_generate_score_take_with_midi_and_stems(corpus, model, onnx_dir, tmp_path):
    video = corpus.parent / "clip5.mp4"
    outs = {}
    for name, backend, seed in (("t", "torch", 3), ("o", "onnx", 3), ("o2", "onnx", 3),
                                ("s", "onnx", 4)):
        wav, mid, stems = tmp_path / f"{name}.wav", tmp_path / f"{name}.mid", tmp_path / name
        where = (["--checkpoint", str(model)] if backend == "torch" else
                 ["--onnx-dir", str(onnx_dir)])
        assert cli(["generate", str(video), "-o", str(wav), "--midi", str(mid), "--stems",
                    str(stems), "--seed", str(seed), "--steps", "4", "--backend", backend,
                    *where, "-q", "--no-cache", "--sample-rate", "32000"]) == 0
        outs[name] = (wav, mid, stems)
    wav, mid, stems = outs["o"]
    audio = media.read_audio(wav, 32000, mono=False)
    assert audio.shape[0] == 2 and abs(audio.shape[1] / 32000 - 4.0) < 0.01
    assert mid.read_bytes()[:4] == b"MThd"
    files = sorted(p.name for p in stems.iterdir())
    assert files == ["accompaniment.wav", "bass.wav", "drums.wav", "melody.wav"]
    for f in files:
        assert media.read_audio(stems / f, 32000, mono=False).shape == audio.shape
    meta = media.read_audio_metadata(wav)
    assert meta["seed"] == 3 and meta["model"] and "ensemble" in meta
    # the mode is the picture's, read by the exported reader, and the notes are in it
    from diffv2m.features.mood import MoodReader
    from diffv2m.score.key import key_name, notes_key
    from diffv2m.score.midi import read_midi
    assert meta["mode_from"] == "picture" and meta["key"].split()[1] in ("major", "minor")
    assert meta["mood_reader"].startswith("mood_reader.safetensors:")
    assert media.read_audio_metadata(outs["t"][0])["key"] == meta["key"]
    assert key_name(*notes_key(read_midi(mid).notes)) == meta["key"]
    assert MoodReader.load(onnx_dir / "mood_reader.safetensors").meta["train_clips"] == 4
    # same seed -> same MIDI and WAV, on one backend and across torch / ONNX Runtime
    assert _sha(outs["o"][1]) == _sha(outs["o2"][1]) == _sha(outs["t"][1])
    strip = lambda p: media.read_audio(p, 32000, mono=False)          # noqa: E731
    np.testing.assert_array_equal(strip(outs["o"][0]), strip(outs["t"][0]))
    assert _sha(outs["o"][0]) == _sha(outs["o2"][0])


def test_mode_option_sets_the_notes_mode_and_is_recorded(corpus, model, onnx_dir, tmp_path):
    from diffv2m.score.key import notes_key
    from diffv2m.score.midi import read_midi
    video = corpus.parent / "clip4.mp4"
    for mode in ("major", "minor"):
        wav, mid = tmp_path / f"{mode}.wav", tmp_path / f"{mode}.mid"
        assert cli(["generate", str(video), "-o", str(wav), "--midi", str(mid), "--mode", mode,
                    "--onnx-dir", str(onnx_dir), "--steps", "4", "-q", "--no-cache",
                    "--sample-rate", "32000"]) == 0
        meta = media.read_audio_metadata(wav)
        assert meta["mode"] == mode and meta["mode_from"] == "user"
        notes = read_midi(mid).notes
        if sum(n.track != "drums" for n in notes) >= 2:
            assert notes_key(notes)[1] == mode


def test_export_lists_the_reader_and_a_changed_reader_is_refused(onnx_dir, tmp_path):
    import shutil
    from diffv2m.errors import UserError
    from diffv2m.runtime.manifest import validate_manifest
    from diffv2m.runtime.ort import load_runtime
    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    assert load_runtime(copy).mood_reader is not None
    reader = copy / "mood_reader.safetensors"
    reader.write_bytes(reader.read_bytes()[:-1] + b"\x00")
    with pytest.raises(UserError, match="mood reader"):
        validate_manifest(copy)
    reader.unlink()
    with pytest.raises(UserError, match="missing"):
        validate_manifest(copy)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "diffv2m", *args], capture_output=True,
                          text=True, timeout=600)


def test_generate_bad_outputs_one_line_exit_2_nothing_written(corpus, model, tmp_path):
    video = str(corpus.parent / "clip5.mp4")
    base = ["generate", video, "--checkpoint", str(model), "--backend", "torch", "--steps", "2",
            "-q", "--no-cache"]
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    cases = [
        (["--midi", str(tmp_path / "nope" / "a.mid")], "does not exist"),
        (["--stems", str(tmp_path / "nope" / "stems")], "does not exist"),
        (["--stems", str(full)], "not empty"),
        (["--midi", str(tmp_path / "a.txt")], ".mid"),
        (["--ensemble", "kazoo"], "unknown ensemble"),
        (["--mode", "dorian"], "--mode"),
        (["--soundfont", str(tmp_path / "missing.sf2")], "missing.sf2"),
    ]
    for k, (extra, words) in enumerate(cases):
        out = tmp_path / f"bad{k}.wav"
        res = _run(*base, "-o", str(out), *extra)
        assert res.returncode == 2, (extra, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (extra, res.stderr)
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("full")) == []
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    # the audio model makes no MIDI
    res = _run("generate", video, "--model", "audio", "--midi", str(tmp_path / "a.mid"),
               "-o", str(tmp_path / "x.wav"), "-q", "--no-cache")
    assert res.returncode == 2 and "score" in res.stderr and not (tmp_path / "x.wav").exists()
    res = _run("generate", video, "--model", "audio", "--mode", "minor",
               "-o", str(tmp_path / "x.wav"), "-q", "--no-cache")
    assert res.returncode == 2 and "--mode" in res.stderr and not (tmp_path / "x.wav").exists()


def test_prior_warm_start_and_frozen_parts(corpus, autoencoder, model, tmp_path):
    """``--init M --init-parts semantic rhythm --freeze semantic rhythm``: those parts come
    from M and stay as they were; the DiT starts fresh and trains."""
    from safetensors.torch import load_file
    run = tmp_path / "warm"
    assert cli(["train", "prior", str(corpus), "--autoencoder",
                str(autoencoder / "autoencoder.safetensors"), "--run-dir", str(run),
                "--steps", "3", "--batch-size", "2", "--warmup", "1", "--save-every", "3",
                "--val-samples", "0", "--init", str(model), "--init-parts", "semantic",
                "rhythm", "--freeze", "semantic", "rhythm"]) == 0
    a, b = load_file(str(model)), load_file(str(run / "model.safetensors"))
    for k in a:
        if k.startswith(("semantic_encoder.", "rhythm_predictor.")):
            assert torch.equal(a[k], b[k]), k
    dit = [k for k in a if k.startswith("dit.") and a[k].dtype.is_floating_point
           and a[k].numel() > 16]
    assert sum(not torch.equal(a[k], b[k]) for k in dit) > 0.9 * len(dit)
    assert cli(["train", "prior", str(corpus), "--autoencoder",
                str(autoencoder / "autoencoder.safetensors"), "--run-dir",
                str(tmp_path / "bad"), "--steps", "1", "--init",
                str(tmp_path / "none.safetensors")]) == 2
