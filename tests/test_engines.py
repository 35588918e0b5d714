"""Engine cache logic (pure Python) with real ONNX files and fake GPU identities; the engines
CLI on a machine without TensorRT; runtime fallback messages."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from diffv2m.errors import UserError  # noqa: E402
from diffv2m.export import engines as builds  # noqa: E402
from diffv2m.cache import file_sha256  # noqa: E402
from diffv2m.runtime import engines  # noqa: E402
from diffv2m.runtime.engines import GpuIdentity  # noqa: E402

H100 = GpuIdentity("NVIDIA H100 80GB HBM3", "9.0", "10.3.0")
H100_TRT11 = GpuIdentity("NVIDIA H100 80GB HBM3", "9.0", "11.0.0")
A10 = GpuIdentity("NVIDIA A10G", "8.6", "10.3.0")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from test_export import tiny_checkpoint
    from diffv2m.export.onnx import export_onnx
    d = tmp_path_factory.mktemp("eng")
    export_onnx(tiny_checkpoint(d / "tiny.safetensors"), d / "onnx", parity=False,
                graphs=("semantic_encoder", "rhythm_predictor", "dit", "decoder"))
    return d / "onnx"


def _manifest(onnx_dir):
    return json.loads((onnx_dir / "manifest.json").read_text())


def _fake_build(cache, identity, graph, sha, precision="fp32", payload=b"engine"):
    folder = engines.gpu_dir(cache, identity)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / engines.engine_filename(graph, sha, precision)
    path.write_bytes(payload + graph.encode())
    return builds.record_engine(cache, identity, graph, precision, sha, path,
                                profiles={"x": [[1], [2], [2]]}, build_seconds=1.5)


def test_identity_key_separates_gpu_cc_and_trt():
    assert H100.key == "nvidia-h100-80gb-hbm3-sm90-trt10.3.0"
    assert len({H100.key, H100_TRT11.key, A10.key}) == 3


def test_record_lookup_list_and_staleness(onnx_dir, tmp_path):
    cache = tmp_path / "engines"
    sha = _manifest(onnx_dir)["graphs"]["dit"]["sha256"]
    rec, reason = engines.lookup("dit", sha, identity=H100, cache_dir=cache)
    assert rec is None and "no engine cache" in reason
    built = _fake_build(cache, H100, "dit", sha)
    rec, reason = engines.lookup("dit", sha, identity=H100, cache_dir=cache)
    assert reason == "" and rec.path == built.path and rec.onnx_sha256 == sha
    m = json.loads((cache / H100.key / "manifest.json").read_text())
    assert m["gpu"] == {"name": H100.name, "compute_capability": "9.0", "trt_version": "10.3.0"}
    assert m["engines"]["dit:fp32"]["sha256"] == file_sha256(built.path)
    rows = engines.list_engines(cache)
    assert [(r["graph"], r["precision"], r["exists"]) for r in rows] == [("dit", "fp32", True)]
    # the ONNX graph changed (re-export): the engine is stale
    rec, reason = engines.lookup("dit", "f" * 64, identity=H100, cache_dir=cache)
    assert rec is None and "stale" in reason and sha[:12] in reason
    # another GPU, or another TensorRT on the same GPU: reason names what the cache holds
    for other in (A10, H100_TRT11):
        rec, reason = engines.lookup("dit", sha, identity=other, cache_dir=cache)
        assert rec is None and other.describe() in reason and "TensorRT 10.3.0" in reason
    # a graph with no engine, a precision not built, a tampered engine file
    assert "no engine for graph 'decoder'" in engines.lookup("decoder", sha, identity=H100,
                                                              cache_dir=cache)[1]
    assert "no fp16 engine" in engines.lookup("dit", sha, identity=H100, cache_dir=cache,
                                              precision="--fp16")[1]
    built.path.write_bytes(b"tampered")
    assert "modified" in engines.lookup("dit", sha, identity=H100, cache_dir=cache)[1]
    # a rebuild from a new ONNX file replaces the old engine file
    new = _fake_build(cache, H100, "dit", "a" * 64)
    assert not built.path.exists() and new.path.exists()
    assert engines.lookup("dit", "a" * 64, identity=H100, cache_dir=cache)[0] is not None


def test_precision_preference(onnx_dir, tmp_path):
    cache = tmp_path / "engines"
    sha = _manifest(onnx_dir)["graphs"]["decoder"]["sha256"]
    _fake_build(cache, H100, "decoder", sha, "fp32")
    assert engines.lookup("decoder", sha, identity=H100, cache_dir=cache)[0].precision == "fp32"
    _fake_build(cache, H100, "decoder", sha, "fp16")
    assert engines.lookup("decoder", sha, identity=H100, cache_dir=cache)[0].precision == "fp16"
    assert engines.lookup("decoder", sha, identity=H100, cache_dir=cache,
                          precision="fp32")[0].precision == "fp32"
    with pytest.raises(UserError, match="unknown precision"):
        engines.normalise_precision("int8")


def test_profiles_cover_what_the_runtime_asks_for(onnx_dir):
    from diffv2m.config import ModelConfig
    m = _manifest(onnx_dir)
    cfg = ModelConfig.from_dict(m["config"])
    prof = builds.profiles_for(m)
    W, L, C = cfg.window_seconds, cfg.latent_frames, cfg.autoencoder.latent_dim
    assert prof["dit"]["x"] == [[1, C, L], [2, C, L], [2, C, L]]
    assert prof["dit"]["colour"] == [[1, 1, 3072], [2, W, 3072], [2, W, 3072]]
    assert prof["dit"]["cls"] == [[1], [2], [2]]
    assert prof["decoder"]["z"][2] == [2, C, L] and prof["decoder"]["z"][1] == [1, C, L]
    assert prof["rhythm_predictor"]["semantic"][1] == [1, W, cfg.semantic_dim]
    assert prof["semantic_encoder"]["pixels"][2][0] == 64
    for graph in prof.values():          # min <= opt <= max on every dim
        for mn, op, mx in graph.values():
            assert all(a <= b <= c for a, b, c in zip(mn, op, mx))


@pytest.mark.parametrize("argv", [["engines", "build", "--fp16"], ["engines", "list"],
                                  ["engines", "verify", "--precision", "fp32"]])
def test_engines_cli_without_tensorrt_one_line_exit_2(argv, capsys, monkeypatch):
    import importlib.util
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    from diffv2m import cli
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tensorrt package is not installed" in err[0]


def test_runtime_falls_back_with_reasons(onnx_dir, tmp_path, monkeypatch):
    from diffv2m.runtime.ort import load_runtime
    m = _manifest(onnx_dir)
    cache = tmp_path / "engines"
    _fake_build(cache, H100, "dit", "b" * 64)                          # stale
    _fake_build(cache, H100, "decoder", m["graphs"]["decoder"]["sha256"])   # matches, bogus bytes
    monkeypatch.setattr(engines, "detect_identity", lambda: H100)
    b = load_runtime(onnx_dir, engines=True, engine_cache=cache, cache_dir=tmp_path / "c")
    assert b.name == "onnxruntime:CPUExecutionProvider"
    notes = "\n".join(b.notes)
    assert "dit: no TensorRT engine (the fp32 engine for 'dit' is stale" in notes
    assert "rhythm_predictor: no TensorRT engine (no engine for graph" in notes
    assert "decoder: TensorRT engine" in notes and "unusable" in notes
    assert all(p == "CPUExecutionProvider" for p in b.providers.values())

    def no_gpu():
        raise engines.EnginesUnavailable("no NVIDIA GPU found (nvidia-smi is not on PATH)")
    monkeypatch.setattr(engines, "detect_identity", no_gpu)
    b = load_runtime(onnx_dir, engines=True, engine_cache=cache, cache_dir=tmp_path / "c")
    assert b.notes == ["TensorRT engines not used: no NVIDIA GPU found (nvidia-smi is not on PATH)"]


def test_engine_modules_import_without_torch():
    from torch_blocker import run_without_torch
    res = run_without_torch("import diffv2m.export.engines_cli, diffv2m.export.tensorrt, "
                            "diffv2m.export.engines, diffv2m.runtime.ort, "
                            "diffv2m.runtime.providers, diffv2m.runtime.tensorrt, sys\n"
                            "assert 'tensorrt' not in sys.modules\n")
    assert res.returncode == 0, res.stderr[-2000:]
