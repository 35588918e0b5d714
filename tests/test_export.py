"""ONNX export of a tiny random checkpoint: checker, IR/opset, dynamic dims, manifest, parity
per graph (random and real inputs) and the whole pipeline's audio, torch vs onnxruntime."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from diffv2m import synthesis  # noqa: E402
from diffv2m.config import (AutoencoderConfig, DiTConfig, ModelConfig,  # noqa: E402
                            RhythmPredictorConfig, SemanticEncoderConfig)
from diffv2m.errors import UserError  # noqa: E402

REL_TOL = 1e-4          # max abs error / max |torch output|, fp32, every graph
# Measured under ATEN_CPU_CAPABILITY=default/avx2/avx512 and ONEDNN_MAX_CPU_ISA=AVX2 (AMD EPYC):
# every parity check here stays below 0.015 x its limit (worst: real-input semantic graph).


def tiny_config() -> ModelConfig:
    return ModelConfig(
        window_seconds=4, overlap_seconds=1, semantic_dim=32, latent_scale=0.5,
        autoencoder=AutoencoderConfig(base_channels=4, latent_dim=8),
        semantic=SemanticEncoderConfig(width=8, out_dim=32, image_size=32),
        rhythm=RhythmPredictorConfig(width=32, depth=1, heads=2, pseudo_hidden=16),
        dit=DiTConfig(embed_dim=64, depth=2, heads=2, cond_token_dim=32, global_cond_dim=96,
                      fusion_hidden=32, rhythm_hidden=16, colour_hidden=32,
                      timestep_features=32, cue_channels=2))


def tiny_checkpoint(path, seed: int = 0):
    from diffv2m.models.checkpoint import save_checkpoint
    from diffv2m.models.diffv2m import DiffV2M
    cfg = tiny_config()
    torch.manual_seed(seed)
    model = DiffV2M(cfg)
    with torch.no_grad():       # zero-initialised layers get weights, so every path matters
        model.dit.preprocess_conv.weight.normal_(0, 0.1)
        model.dit.postprocess_conv.weight.normal_(0, 0.1)
        for layer in model.dit.transformer.layers:
            if layer.ada_ln is not None:
                layer.ada_ln.weight.normal_(0, 0.02)
    return save_checkpoint(path, model, cfg, {"note": "random test weights"})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from diffv2m.export.onnx import export_onnx
    d = tmp_path_factory.mktemp("export")
    ckpt = tiny_checkpoint(d / "tiny.safetensors")
    manifest = export_onnx(ckpt, d / "onnx", parity=True, rel_tol=REL_TOL)
    from diffv2m.models.checkpoint import load_checkpoint
    model, cfg, _ = load_checkpoint(ckpt)
    return SimpleNamespace(dir=d / "onnx", ckpt=ckpt, manifest=manifest, model=model, cfg=cfg)


def _session(exported, name):
    return ort.InferenceSession(str(exported.dir / f"{name}.onnx"),
                                providers=["CPUExecutionProvider"])


def test_graphs_pass_checker_with_pinned_ir_and_opset(exported):
    from diffv2m.export.onnx import IR_VERSION
    assert set(exported.manifest["graphs"]) == {"semantic_encoder", "rhythm_predictor", "dit",
                                               "decoder", "encoder"}
    for name, g in exported.manifest["graphs"].items():
        m = onnx.load(str(exported.dir / g["file"]))
        onnx.checker.check_model(m, full_check=True)
        assert m.ir_version == IR_VERSION == g["ir_version"] == 9
        assert {o.domain: o.version for o in m.opset_import}[""] == 17
        assert not g["external_data"] and list(g["files"]) == [g["file"]]
        ops = {n.op_type for n in m.graph.node}
        assert "Attention" not in ops
        if name in ("dit", "rhythm_predictor"):
            assert {"MatMul", "Softmax"} <= ops


def test_dynamic_dims_stay_dynamic_in_saved_graphs(exported):
    shapes = {(name, r["name"]): r["shape"] for name, g in exported.manifest["graphs"].items()
              for r in g["inputs"] + g["outputs"]}
    C = exported.cfg.autoencoder.latent_dim
    assert shapes[("dit", "x")] == ["batch", C, "frames"]
    assert shapes[("dit", "colour")] == ["batch", "seconds", 3072]
    assert shapes[("dit", "cls")] == ["batch"]
    assert shapes[("rhythm_predictor", "odf")] == ["batch", "seconds"]
    assert shapes[("semantic_encoder", "pixels")] == ["frames", 3, 32, 32]
    assert shapes[("decoder", "audio")] == ["batch", 1, "samples"]
    m = onnx.load(str(exported.dir / "dit.onnx"))
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.numerics
def test_manifest_contents_and_validation(exported):
    from diffv2m.export.onnx import validate_manifest
    from diffv2m.jobs import file_sha256
    m = validate_manifest(exported.dir)
    assert m == json.loads((exported.dir / "manifest.json").read_text())
    assert m["checkpoint"]["sha256"] == file_sha256(exported.ckpt)
    assert ModelConfig.from_dict(m["config"]) == exported.cfg
    assert m["opset"] == 17 and m["ir_version"] == 9
    assert m["exporter"]["torch"] == torch.__version__ and m["exporter"]["onnx"] == onnx.__version__
    for name, g in m["graphs"].items():
        assert g["sha256"] == file_sha256(exported.dir / g["file"])
        assert m["parity"][name]["rel_err"] <= REL_TOL
    assert m["graphs"]["dit"]["inputs"][5] == {"name": "cls", "dtype": "int64", "shape": ["batch"]}


@pytest.mark.numerics
@pytest.mark.parametrize("sizes", [dict(batch=1, seconds=4, frames=4), dict(batch=3, seconds=2, frames=11)])
def test_parity_per_graph_random_inputs_at_other_sizes(exported, sizes):
    from diffv2m.export.onnx import example_inputs, graph_specs, torch_reference
    specs = graph_specs(exported.model, exported.cfg)
    for name in exported.manifest["graphs"]:
        inputs = example_inputs(name, exported.cfg, seed=7, **sizes)
        got = _session(exported, name).run(None, inputs)[0]
        want = torch_reference(specs[name]["module"], inputs)
        assert got.shape == want.shape, name
        scale = np.abs(want).max()
        assert scale > 1e-3, name
        assert np.abs(got - want).max() <= REL_TOL * scale, name


@pytest.mark.numerics
def test_parity_on_real_inputs(exported, tmp_path):
    """Real video frames through the semantic graph, real audio through encoder -> decoder."""
    from mediagen import make_click_track, make_video
    from diffv2m import media
    from diffv2m.export.onnx import graph_specs, torch_reference
    from diffv2m.features.video import compute_video_features
    from diffv2m.jobs import semantic_pixels
    specs = graph_specs(exported.model, exported.cfg)
    v = make_video(tmp_path / "v.mp4", seconds=3.0, cut_times=(1.5,))
    feats = compute_video_features(media.FileFrameSource(v.path), image_size=32)
    pix = {"pixels": semantic_pixels(feats.frames_1fps, 32)}
    got = _session(exported, "semantic_encoder").run(None, pix)[0]
    want = torch_reference(specs["semantic_encoder"]["module"], pix)
    assert np.abs(got - want).max() <= REL_TOL * np.abs(want).max()
    hop = exported.cfg.autoencoder.hop
    audio = make_click_track(seconds=1.0, sr=24000, bpm=240)[None, :, : 24000 // hop * hop]
    audio = {"audio": np.ascontiguousarray(audio, np.float32)}
    mean = _session(exported, "encoder").run(None, audio)[0]
    want_mean = torch_reference(specs["encoder"]["module"], audio)
    assert np.abs(mean - want_mean).max() <= REL_TOL * np.abs(want_mean).max()
    z = {"z": (mean / exported.cfg.latent_scale).astype(np.float32)}
    rec = _session(exported, "decoder").run(None, z)[0]
    with torch.no_grad():   # the decoder graph bakes in decode(z * latent_scale)
        want_rec = exported.model.autoencoder.decode(torch.from_numpy(mean)).numpy()
    assert np.abs(rec - want_rec).max() <= REL_TOL * np.abs(want_rec).max()


def _features(T=7, duration=6.5):
    rng = np.random.default_rng(0)
    return SimpleNamespace(duration=duration, frames_1fps=rng.integers(0, 255, (T, 32, 32, 3), np.uint8),
                           colour=rng.random((T, 3072)).astype(np.float32) / 3072,
                           scene_cut=(rng.random(T) > 0.6).astype(np.float32),
                           motion=rng.random(T).astype(np.float32), cut_times=np.array([1.0]))


@pytest.mark.numerics
def test_pipeline_audio_torch_vs_onnxruntime(exported, tmp_path):
    """Same seed, same conditions, 2 overlapping windows, CFG 3: audio within 1e-4 abs."""
    from diffv2m.export.runtime import load_runtime
    from diffv2m.pipeline import TorchBackend
    tb = TorchBackend(exported.model, exported.cfg)
    ob = load_runtime(exported.dir, cache_dir=tmp_path / "cache")
    settings = synthesis.Settings(seed=3, steps=6, cfg_scale=3.0)
    ct = synthesis.conditions_from_features(tb, _features(), cls=1)
    co = synthesis.conditions_from_features(ob, _features(), cls=1)
    assert np.abs(ct.semantic - co.semantic).max() <= 1e-4 * np.abs(ct.semantic).max()
    assert np.abs(ct.odf - co.odf).max() <= 1e-5
    at = synthesis.synthesise(tb, ct, settings).audio
    ao = synthesis.synthesise(ob, co, settings).audio
    assert at.shape == ao.shape == (1, int(6.5 * exported.cfg.sample_rate))
    assert np.abs(at).max() > 1e-2
    assert np.abs(at - ao).max() <= 1e-4


def test_cli_export_and_bad_opset(exported, tmp_path, capsys):
    from diffv2m import cli
    assert cli.main(["export", "onnx", str(exported.ckpt), "-o", str(tmp_path / "o"),
                     "--opset", "23"]) == 2
    assert "opset 23" in capsys.readouterr().err
    assert cli.main(["export", "onnx", str(tmp_path / "nope.safetensors"), "-o",
                     str(tmp_path / "o")]) == 2
    assert cli.main(["export", "onnx", str(exported.ckpt), "-o", str(tmp_path / "o"),
                     "--graphs", "decoder", "--opset", "20", "--no-parity"]) == 0
    with pytest.raises(UserError, match="semantic_encoder|rhythm_predictor"):
        from diffv2m.export.onnx import validate_manifest
        validate_manifest(tmp_path / "o")       # a partial export is not a runtime directory
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["opset"] == 20 and m["graphs"]["decoder"]["ir_version"] == 9
