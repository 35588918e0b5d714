"""A new seed on the same video reuses the model's conditions: the feature cache keeps the
semantic tokens and the predicted ODF (real ONNX Runtime sessions of the embedded score
model, real videos), and the runtime opens only the graphs a job runs."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from diffv2m import jobs, media
from diffv2m.features import feature_cache
from mediagen import make_video

from embedded_models import SCORE_ONNX, needs_score_model as needs_model


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditions")
    return make_video(root / "clip.mp4", seconds=13, fps=Fraction(12), size=(96, 64),
                      cut_times=(3.0, 7.5, 10.0)).path


def _runtime():
    from diffv2m.runtime.ort import load_runtime
    return load_runtime(SCORE_ONNX, threads=1)


def _counting(backend):
    calls = {"semantic": 0, "rhythm": 0}
    enc, rhy = backend.encode_semantic, backend.predict_rhythm

    def encode_semantic(frames):
        calls["semantic"] += 1
        return enc(frames)

    def predict_rhythm(*a):
        calls["rhythm"] += 1
        return rhy(*a)
    backend.encode_semantic, backend.predict_rhythm = encode_semantic, predict_rhythm
    return calls


def _same(a, b):
    for name in ("semantic", "odf", "colour", "scene_cut", "pseudo_beat", "cut_times",
                 "motion_times", "motion_values"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.duration == b.duration


def _condition_entries(cache):
    return sorted(p for p in cache.glob("*.npz") if "frames_1fps" not in np.load(p).files)


@needs_model
def test_a_new_seed_reuses_the_conditions_and_opens_only_dit_and_decoder(clip, tmp_path):
    cache = tmp_path / "features"
    plain = _runtime()
    assert sorted(plain.graphs) == ["decoder", "dit"]           # the rest open on use
    uncached = jobs.video_conditions(plain, media.FileFrameSource(clip))
    assert "semantic_encoder" in plain.graphs and "rhythm_predictor" in plain.graphs

    first = _runtime()
    calls = _counting(first)
    a = jobs.video_conditions(first, media.FileFrameSource(clip), cache_dir=cache)
    assert calls["semantic"] == 1 and calls["rhythm"] >= 2
    _same(a, uncached)
    assert len(_condition_entries(cache)) == 1

    again = _runtime()                                           # a new process's runtime
    calls = _counting(again)
    seen = []
    b = jobs.video_conditions(again, media.FileFrameSource(clip), cache_dir=cache,
                              progress=lambda st, d, n: seen.append((st, d, n)))
    assert calls == {"semantic": 0, "rhythm": 0}
    assert sorted(again.graphs) == ["decoder", "dit"]            # never opened
    assert ("semantic", 1, 1) in seen and ("rhythm", 1, 1) in seen
    _same(b, uncached)

    # another style class predicts another ODF: computed, and kept apart
    c = jobs.video_conditions(again, media.FileFrameSource(clip), cls=2, cache_dir=cache)
    assert calls["semantic"] == 1 and calls["rhythm"] >= 2
    assert len(_condition_entries(cache)) == 2
    np.testing.assert_array_equal(c.semantic, a.semantic)
    _same(c, jobs.video_conditions(plain, media.FileFrameSource(clip), cls=2))


@needs_model
def test_other_runtime_damage_and_no_identity_recompute(clip, tmp_path):
    cache = tmp_path / "features"
    be = _runtime()
    ref = jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache)
    [entry] = _condition_entries(cache)
    calls = _counting(be)

    be.conditions_identity = "ort-cpu-another-runtime"          # other graphs/threads/CPU
    _same(jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache), ref)
    assert calls["semantic"] == 1 and len(_condition_entries(cache)) == 2

    be.conditions_identity = _runtime().conditions_identity
    entry.write_bytes(b"PK\x03\x04 not a zip")                  # damaged: healed
    _same(jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache), ref)
    assert calls["semantic"] == 2
    assert feature_cache.read_arrays(entry, {"odf": ref.odf.shape}) is not None

    feature_cache.write_arrays(entry, {"semantic": np.zeros((3, 64), np.float32),
                                       "odf": np.zeros(3, np.float32)})   # foreign shapes
    _same(jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache), ref)
    assert calls["semantic"] == 3
    _same(jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache), ref)
    assert calls["semantic"] == 3                                # and replaced: a hit again

    be.conditions_identity = None                                # a backend that names none
    for p in _condition_entries(cache):
        p.unlink()
    jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache)
    jobs.video_conditions(be, media.FileFrameSource(clip), cache_dir=cache)
    assert calls["semantic"] == 5 and _condition_entries(cache) == []


@needs_model
def test_the_identity_names_threads_and_is_only_for_the_cpu_provider():
    from diffv2m.runtime.ort import _conditions_identity, load_runtime
    a, b = _runtime(), _runtime()
    assert a.conditions_identity and a.conditions_identity == b.conditions_identity
    assert load_runtime(SCORE_ONNX, threads=2).conditions_identity != a.conditions_identity
    m = a.manifest
    assert _conditions_identity(m, {}, ["CUDAExecutionProvider", "CPUExecutionProvider"], 1) is None
    other = {**m, "graphs": {**m["graphs"], "rhythm_predictor": {
        **m["graphs"]["rhythm_predictor"], "sha256": "0" * 64}}}
    assert _conditions_identity(other, {}, ["CPUExecutionProvider"], 1) != a.conditions_identity


@needs_model
def test_report_and_providers_open_every_generation_graph():
    be = _runtime()
    assert sorted(be.providers) == ["decoder", "dit", "rhythm_predictor", "semantic_encoder"]
    assert sorted(be.graphs) == ["decoder", "dit", "rhythm_predictor", "semantic_encoder"]
    assert len([line for line in be.report() if "onnxruntime CPUExecutionProvider" in line]) == 4
    assert be.graph("no_such_graph") is None


@needs_model
def test_generate_with_cached_conditions_writes_the_bytes_of_an_uncached_run(clip, tmp_path):
    import os
    env = {**os.environ, "DIFFV2M_CACHE": str(tmp_path / "cache")}

    def generate(name, *extra):
        out, mid = tmp_path / f"{name}.wav", tmp_path / f"{name}.mid"
        res = subprocess.run([sys.executable, "-m", "diffv2m", "generate", str(clip), "-o",
                              str(out), "--midi", str(mid), "--seed", "6", "--steps", "4",
                              "-q", *extra], capture_output=True, text=True, env=env,
                             timeout=600)
        assert res.returncode == 0, res.stderr
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in (out, mid)]
    fresh = generate("fresh", "--no-cache")
    assert generate("first") == fresh                   # fills the cache
    assert len(_condition_entries(tmp_path / "cache" / "features")) == 1
    assert generate("again") == fresh                   # features and conditions from it


def test_array_entries_heal(tmp_path):
    path = tmp_path / "x.npz"
    assert feature_cache.read_arrays(path, {"odf": (4,)}) is None
    feature_cache.write_arrays(path, {"odf": np.arange(4, dtype=np.float32)})
    np.testing.assert_array_equal(feature_cache.read_arrays(path, {"odf": (4,)})["odf"],
                                  np.arange(4, dtype=np.float32))
    for bad in ({"odf": (5,)}, {"odf": (4,), "semantic": (4, 2)}):   # other shape / missing
        assert feature_cache.read_arrays(path, bad) is None and not path.exists()
        feature_cache.write_arrays(path, {"odf": np.arange(4, dtype=np.float32)})
    feature_cache.write_arrays(path, {"odf": np.arange(4, dtype=np.float64)})   # other type
    assert feature_cache.read_arrays(path, {"odf": (4,)}) is None and not path.exists()
    feature_cache.write_arrays(path, {"odf": np.full(4, np.nan, np.float32)})   # not finite
    assert feature_cache.read_arrays(path, {"odf": (4,)}) is None and not path.exists()
    np.savez(path, features_version=np.int64(feature_cache.FEATURES_VERSION - 1),
             odf=np.zeros(4, np.float32))                                  # older version
    assert feature_cache.read_arrays(path, {"odf": (4,)}) is None and not path.exists()
    path.mkdir()                                                           # a folder
    assert feature_cache.read_arrays(path, {"odf": (4,)}) is None and not path.exists()
    with pytest.raises(ValueError):
        feature_cache.write_arrays(path, {feature_cache.VERSION_ARRAY: np.zeros(1)})
