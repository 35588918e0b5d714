"""Model families (diffv2m.families): the registry, a new family added as a module (no branch
in generation), the extra outputs each family refuses or writes, and --stems from the mix's
one render."""
from __future__ import annotations

import dataclasses
import sys
import types
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from diffv2m import families, synthesis
from diffv2m.errors import UserError
from embedded_models import SCORE_ONNX, needs_score_model
from torch_blocker import run_without_torch
from test_synthesis import LinearBackend, features



def test_registry_names_each_family_by_latent_family():
    assert set(families.FAMILIES) == {"audio", "score"}
    for name in families.FAMILIES:
        fam = families.family(name)
        assert fam.name == name
        assert ":" in fam.autoencoder
    assert families.family("audio").outputs == frozenset()
    assert families.family("score").outputs == {"midi", "stems"}
    with pytest.raises(UserError, match="unknown model family 'nope'"):
        families.family("nope")


def test_families_import_without_torch():
    code = ("import diffv2m.families as f\n"
            "for n in f.FAMILIES: f.family(n)\n")
    res = run_without_torch(code)
    assert res.returncode == 0, res.stderr[-2000:]


def test_a_new_family_is_a_module_and_a_registry_line(monkeypatch):
    """synthesise hands the decoded windows to the family the config names."""
    seen = {}

    class Halves:
        name = "halves"
        autoencoder = "x:Y"
        outputs = frozenset()

        def take(self, backend, conditions, settings, pieces, timings, *, progress=None,
                 soundfont=None, stems=False):
            seen["starts"] = [s for s, _ in pieces]
            audio = np.concatenate([a for _, a in pieces], axis=-1) * 0.5
            return synthesis.Take(audio=audio, sample_rate=backend.config.sample_rate,
                                  settings=settings, conditions=conditions, backend="halves",
                                  timings=timings)

    mod = types.ModuleType("halves_family")
    mod.FAMILY = Halves()
    monkeypatch.setitem(sys.modules, "halves_family", mod)
    monkeypatch.setitem(families.FAMILIES, "halves", "halves_family")
    backend = LinearBackend()
    cond = synthesis.conditions_from_features(backend, features(6.0))
    base = synthesis.synthesise(backend, cond, synthesis.Settings(seed=1, steps=2))
    backend.config = dataclasses.replace(backend.config, latent_family="halves")
    take = synthesis.synthesise(backend, cond, synthesis.Settings(seed=1, steps=2))
    assert take.backend == "halves" and seen["starts"] == [0, 2]
    assert take.audio.shape[-1] == 2 * backend.config.window_seconds * backend.config.sample_rate
    assert base.backend == backend.name                  # the audio family: stitched windows
    assert base.audio.shape[-1] == 6 * backend.config.sample_rate


def test_audio_family_refuses_score_outputs_and_options():
    audio = families.family("audio")
    with pytest.raises(UserError, match=r"x\.mid: MIDI and stems come from a score-family"):
        families.check_outputs(audio, midi="x.mid")
    with pytest.raises(UserError, match=r"s/melody\.wav: MIDI and stems"):
        families.check_outputs(audio, stems={"melody": "s/melody.wav"})
    families.check_outputs(families.family("score"), midi="x.mid", stems={"melody": "m.wav"})
    cfg = LinearBackend().config
    args = SimpleNamespace(midi=None, stems=None, ensemble="piano", soundfont=None,
                           sample_rate=None)
    with pytest.raises(UserError, match="--ensemble: needs a score-family model"):
        audio.check_options(args, cfg, synthesis.Settings())
    args.ensemble, args.sample_rate = None, 44100
    with pytest.raises(UserError, match="--sample-rate 44100: the audio model makes 800 Hz"):
        audio.check_options(args, cfg, synthesis.Settings())


@needs_score_model
def test_stems_come_from_the_mix_render(tmp_path, monkeypatch):
    """With --stems the score is synthesised once, and the mix is the same bytes as without."""
    from diffv2m import jobs
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.score import render
    from diffv2m.score.files import stem_paths
    from mediagen import make_video
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=Fraction(24), size=(96, 64),
                       cut_times=(1.5,)).path
    backend = load_runtime(SCORE_ONNX)
    settings = synthesis.Settings(seed=4, steps=3, cfg_scale=2.0)
    calls = []
    real = render._tracks                # the synthesis itself (the mix's and the stems')
    monkeypatch.setattr(render, "_tracks", lambda *a, **k: calls.append(1) or real(*a, **k))
    plain = jobs.generate_file(backend, video, tmp_path / "plain.wav", settings=settings)
    assert len(calls) == 1
    (tmp_path / "stems").mkdir()
    paths = stem_paths(tmp_path / "stems")
    take = jobs.generate_file(backend, video, tmp_path / "with.wav", settings=settings,
                              stems=paths, midi=tmp_path / "t.mid")
    assert len(calls) == 2                                   # one render for mix + stems
    assert (tmp_path / "with.wav").read_bytes() == (tmp_path / "plain.wav").read_bytes()
    assert np.array_equal(take.audio, plain.audio)
    assert sorted(take.stems) == sorted(paths) and all(p.is_file() for p in paths.values())
    assert (tmp_path / "t.mid").read_bytes()[:4] == b"MThd"
