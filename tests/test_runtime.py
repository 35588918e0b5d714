"""The ONNX Runtime backend: provider report, optimised-graph cache, torch-blocked generation,
determinism, stale/missing manifests."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from diffv2m.errors import UserError  # noqa: E402
from torch_blocker import run_without_torch  # noqa: E402


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from test_export import tiny_checkpoint
    from diffv2m.export.onnx import export_onnx
    d = tmp_path_factory.mktemp("rt")
    export_onnx(tiny_checkpoint(d / "tiny.safetensors"), d / "onnx", parity=False)
    return d / "onnx"


def test_provider_order_and_report(onnx_dir, tmp_path):
    from diffv2m.runtime.providers import physical_cores, provider_order
    from diffv2m.runtime.ort import load_runtime
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_order(None, gpu) == gpu
    assert provider_order(("cuda",), gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_order(None, ["AzureExecutionProvider", "CPUExecutionProvider"]) == \
        ["CPUExecutionProvider"]
    with pytest.raises(UserError, match="unknown execution provider"):
        provider_order(("rocm",), gpu)
    # asking for CUDA on CPU-only onnxruntime: reported as what really runs
    b = load_runtime(onnx_dir, prefer=("cuda",), cache_dir=tmp_path)
    assert b.name == "onnxruntime:CPUExecutionProvider"
    assert set(b.providers.values()) == {"CPUExecutionProvider"}
    assert b.threads == physical_cores() >= 1
    assert b.graphs["dit"].session.get_session_options().intra_op_num_threads == b.threads
    assert b.model_id.startswith("tiny.safetensors:")
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    assert b.graph_hashes == {k: g["sha256"] for k, g in manifest["graphs"].items()}
    report = "\n".join(b.report())
    assert "dit: onnxruntime CPUExecutionProvider" in report
    assert "tensorrt package is not installed" in report
    assert load_runtime(onnx_dir, threads=1, cache_dir=tmp_path).threads == 1


def test_optimised_graph_cache_created_and_reused(onnx_dir, tmp_path):
    from diffv2m.export.onnx import example_inputs
    from diffv2m.runtime.ort import load_runtime
    b1 = load_runtime(onnx_dir, cache_dir=tmp_path)
    g1 = b1.graphs["dit"]
    assert not g1.from_cache and g1.optimized_path.is_file()
    assert g1.optimized_path.parent.parent == tmp_path / "ort"
    assert g1.optimized_path.parent.name.startswith(f"dit-{b1.graph_hashes['dit'][:16]}-ort")
    mtime = g1.optimized_path.stat().st_mtime_ns
    b2 = load_runtime(onnx_dir, cache_dir=tmp_path)
    g2 = b2.graphs["dit"]
    assert g2.from_cache and g2.optimized_path == g1.optimized_path
    assert g2.optimized_path.stat().st_mtime_ns == mtime
    assert "reused from" in g2.describe()
    x = example_inputs("dit", b1.config, batch=2, seconds=4, frames=b1.config.latent_frames)
    np.testing.assert_array_equal(g1.run(x), g2.run(x))
    # a corrupt cached graph is rebuilt, not fatal
    g1.optimized_path.write_bytes(b"garbage")
    b3 = load_runtime(onnx_dir, cache_dir=tmp_path)
    assert not b3.graphs["dit"].from_cache
    np.testing.assert_array_equal(b3.graphs["dit"].run(x), g1.run(x))


def test_missing_or_stale_manifest_is_a_user_error(onnx_dir, tmp_path):
    from diffv2m.runtime.ort import load_runtime
    with pytest.raises(UserError, match="no such directory"):
        load_runtime(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="manifest.json: missing"):
        load_runtime(tmp_path / "empty")
    stale = tmp_path / "stale"
    shutil.copytree(onnx_dir, stale)
    m = json.loads((stale / "manifest.json").read_text())
    m["graphs"]["dit"]["files"]["dit.onnx"] = "0" * 64      # the graph changed after export
    (stale / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="dit.onnx: sha256 does not match"):
        load_runtime(stale, cache_dir=tmp_path)
    (stale / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable manifest"):
        load_runtime(stale)


def test_graph_hashes_are_remembered_and_a_changed_graph_is_still_caught(onnx_dir, tmp_path,
                                                                          monkeypatch):
    """A graph unchanged since its last check is not read again; one rewritten in place, even
    at the same size with its modification time put back, is hashed anew and refused."""
    import os
    from diffv2m import cache
    from diffv2m.runtime.manifest import validate_manifest
    d = tmp_path / "graphs"
    shutil.copytree(onnx_dir, d)
    hashed = []
    real = cache.file_sha256
    counted = lambda p: hashed.append(p) or real(p)  # noqa: E731
    monkeypatch.setattr(cache, "file_sha256", counted)
    monkeypatch.setattr("diffv2m.runtime.manifest.file_sha256", counted)
    validate_manifest(d, cache_dir=tmp_path / "cache")
    files = {Path(p).name for p in hashed}
    assert "dit.onnx" in files and len(hashed) == len(files)      # each file once
    hashed.clear()
    validate_manifest(d, cache_dir=tmp_path / "cache")
    assert hashed == []                                           # remembered
    assert cache.known_sha256(d / "dit.onnx", tmp_path / "cache") == real(d / "dit.onnx")
    validate_manifest(d)                                          # no cache folder: hashes
    assert len(hashed) == len(files)
    hashed.clear()
    # the same bytes count, one flipped, the modification time put back
    dit = d / "dit.onnx"
    st = dit.stat()
    data = bytearray(dit.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dit.write_bytes(bytes(data))
    os.utime(dit, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dit.stat().st_size == st.st_size and dit.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(UserError, match="dit.onnx: sha256 does not match"):
        validate_manifest(d, cache_dir=tmp_path / "cache")
    # a cache that cannot be written: still the right answer
    (tmp_path / "plain").write_text("x")
    assert cache.known_sha256(d / "decoder.onnx", tmp_path / "plain" / "c") == \
        real(d / "decoder.onnx")


def test_generation_with_torch_blocked(onnx_dir, tmp_path):
    from mediagen import make_video
    video = make_video(tmp_path / "clip.mp4", seconds=5.0, cut_times=(1.5, 3.2)).path
    code = f"""
import numpy as np, sys
from diffv2m import jobs, media
from diffv2m.runtime.ort import load_runtime
from diffv2m.synthesis import Settings
b = load_runtime({str(onnx_dir)!r}, cache_dir={str(tmp_path / 'cache')!r})
assert b.name == "onnxruntime:CPUExecutionProvider", b.name
outs = []
for k, seed in enumerate((5, 5, 6)):
    out = {str(tmp_path)!r} + f"/take{{k}}.wav"
    take = jobs.generate_file(b, {str(video)!r}, out, settings=Settings(seed=seed, steps=4),
                              cache_dir={str(tmp_path / 'features')!r}, model_id=b.model_id)
    outs.append(take.audio)
    meta = media.read_audio_metadata(out)
    assert meta["backend"] == b.name and meta["seed"] == seed, meta
    audio = media.read_audio(out, b.config.sample_rate)
    assert abs(audio.shape[-1] - 5.0 * b.config.sample_rate) <= 1, audio.shape
np.testing.assert_array_equal(outs[0], outs[1])
assert np.abs(outs[0] - outs[2]).max() > 1e-3
assert np.abs(outs[0]).max() > 1e-3
print("OK", b.name)
"""
    res = run_without_torch(code, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK onnxruntime:CPUExecutionProvider" in res.stdout
