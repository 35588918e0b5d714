"""``diffv2m convert official``: the published checkpoint -> this project's paper model.

* names at the full published shapes (the 2,517-tensor Lightning layout built from the
  reference manifest, shape-only) map strictly onto the paper model built on the meta device;
* the real path (torch.save file -> CLI -> model.safetensors -> strict load -> forward) on a
  shrunk config with the same layer types reproduces random source weights bit-exactly;
* leftover / missing / mis-shaped tensors refuse to write anything;
* the converted DiT exports to ONNX and matches onnxruntime; colour never reaches the DiT
  with the published wiring;
* exact parameter counts of the paper config vs the published 1,595,377,922.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from diffv2m import cli  # noqa: E402
from diffv2m.config import (AutoencoderConfig, DiTConfig, ModelConfig,  # noqa: E402
                            RhythmPredictorConfig, SemanticEncoderConfig)
from diffv2m.convert import official  # noqa: E402
from diffv2m.convert.official import (_Shape, convert_official, expected_state,  # noqa: E402
                                      known_unused, map_tensors, official_config, split_source,
                                      to_ours, to_published)
from diffv2m.errors import UserError  # noqa: E402
from diffv2m.models.checkpoint import load_checkpoint  # noqa: E402
from diffv2m.models.diffv2m import DiffV2M, count_parameters  # noqa: E402

torch.set_num_threads(1)

REFERENCE = Path("/work/shared/reference/diffv2m_paper_state_dict.json")
for _cand in (Path(__file__).resolve().parents[2] / "shared" / "reference" /
              "diffv2m_paper_state_dict.json", REFERENCE):
    if _cand.is_file():
        REFERENCE = _cand
        break
needs_reference = pytest.mark.skipif(not REFERENCE.is_file(),
                                     reason="published state-dict manifest not present")
PUBLISHED_PARAMS = 1_595_377_922
EXTRAS = ("diffusion_ema.initted", "diffusion_ema.step",
          "losses.losses.0.weight", "losses.losses.1.weight")


def tiny_config(**ae) -> ModelConfig:
    """Same layer types and quirks as the paper config (prepend, published norms, seconds
    tokens, no context positions, FiLM_choose, grouped kv heads, published wiring, Oobleck VAE
    with weight norm and Snake over 5 strides), sizes cut."""
    return ModelConfig(
        name="tiny-official", window_seconds=6, overlap_seconds=1, semantic_dim=16,
        colour_dim=3072,
        autoencoder=AutoencoderConfig(sample_rate=44100, audio_channels=2, base_channels=4,
                                      channel_mults=(1, 2, 2, 4, 4), strides=(2, 4, 4, 8, 8),
                                      latent_dim=8, use_snake=True, **ae),
        semantic=SemanticEncoderConfig(backend="open_clip", image_size=32, out_dim=16),
        rhythm=RhythmPredictorConfig(width=64, depth=2, heads=2, max_seconds=6,
                                     output_activation="none", pseudo_hidden=16),
        dit=DiTConfig(embed_dim=64, depth=2, heads=2, cond_token_dim=32, global_cond_dim=96,
                      global_cond_type="prepend", fusion="FiLM_choose", max_seconds=6,
                      published_norms=True, context_pos_emb="none", seconds_tokens=True,
                      published_wiring=True, rhythm_hidden=16, colour_hidden=16,
                      fusion_t_dim=8, fusion_hidden=16, timestep_features=16),
    )


def published_state(config: ModelConfig, seed: int = 0, *, training: bool = True
                    ) -> dict[str, torch.Tensor]:
    """A synthetic published checkpoint for ``config``: the rule table run backwards on our
    model's names, random values (small, so forwards stay finite), the known unused
    ``proj_out`` tensors, and (``training``) the EMA copy and the 4 training extras."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = DiffV2M(config)
    flat: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        p = to_published(k)
        assert p is not None, k
        flat[p] = 0.2 * torch.randn(v.shape, generator=g)
    for k, shape in known_unused(config).items():
        flat[k] = torch.randn(shape, generator=g)
    if not training:
        return flat
    sd = {"diffusion." + k: v for k, v in flat.items()}
    for k, v in flat.items():
        if k.startswith("model."):
            sd["diffusion_ema.ema_model." + k[len("model."):]] = 0.2 * torch.randn(v.shape,
                                                                                   generator=g)
    sd["diffusion_ema.initted"] = torch.tensor([True])
    sd["diffusion_ema.step"] = torch.tensor([1234])
    sd["losses.losses.0.weight"] = torch.tensor(1.0)
    sd["losses.losses.1.weight"] = torch.tensor(0.5)
    return sd


def save_lightning(path: Path, sd: dict) -> Path:
    torch.save({"state_dict": sd, "epoch": 40, "global_step": 1000}, str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = tiny_config()
    d = tmp_path_factory.mktemp("tiny")
    cfg_path = d / "tiny.json"
    cfg_path.write_text(cfg.to_json())
    sd = published_state(cfg)
    ckpt = save_lightning(d / "published.ckpt", sd)
    out = d / "converted"
    rc = cli.main(["convert", "official", str(ckpt), "-o", str(out), "--config", str(cfg_path)])
    assert rc == 0
    return cfg, cfg_path, sd, ckpt, out


def _inputs(cfg: ModelConfig, B: int = 2, T: int = 5, L: int = 7, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(B, cfg.autoencoder.latent_dim, L, generator=g),
                t=torch.tensor([0.9, 0.1])[:B],
                semantic=torch.randn(B, T, cfg.semantic_dim, generator=g),
                rhythm=torch.rand(B, T, 1, generator=g),
                colour=torch.rand(B, T, cfg.colour_dim, generator=g),
                cls=torch.tensor([0, 2])[:B],
                seconds_start=torch.tensor([0.0, 3.0])[:B],
                seconds_total=torch.tensor([5.0, 6.0])[:B])


# ---------------------------------------------------------------- 1a: full published names

def _reference():
    ref = json.loads(REFERENCE.read_text())
    return {k: tuple(v["shape"] if isinstance(v, dict) else v) for k, v in ref["tensors"].items()}


@needs_reference
@pytest.mark.parametrize("use_ema", [False, True])
def test_full_published_layout_maps_strictly_onto_paper_model(use_ema):
    pub = _reference()
    assert len(pub) == 1515
    # the Lightning layout, shape-only: 1,515 + EMA copy of the DiT + 4 extras = 2,517
    ckpt = {"diffusion." + k: _Shape(s) for k, s in pub.items()}
    ckpt.update({"diffusion_ema.ema_model." + k[len("model."):]: _Shape(s)
                 for k, s in pub.items() if k.startswith("model.model.")})
    ckpt.update({k: _Shape(()) for k in EXTRAS})
    assert len(ckpt) == 2517
    src = split_source(ckpt, use_ema=use_ema)
    assert sorted(src.extras) == sorted(EXTRAS) and not src.leftover
    assert (src.ema_used, src.ema_ignored) == ((998, 0) if use_ema else (0, 998))
    expected = expected_state(official_config())       # our paper model on the meta device
    res = map_tensors(src.tensors, expected)
    assert res.ok, (res.unmatched[:3], res.not_in_model[:3], res.shape_errors[:3],
                    res.missing[:3])
    assert len(res.tensors) == len(expected) == 1509
    for k, v in res.tensors.items():
        assert tuple(v.shape) == tuple(expected[k]), k
    assert sorted(res.dropped) == sorted(known_unused(official_config()))
    assert {k: tuple(s) for k, s in known_unused(official_config()).items()} == \
        {k: pub[k] for k in res.dropped}
    # the table is a bijection between the published names (less the unused) and ours
    for p in pub:
        o = to_ours(p)
        if p in res.dropped:
            assert isinstance(o, official._Drop)
        else:
            assert isinstance(o, str) and to_published(o) == p, p
    # a few renames spelled out (the rule table at work)
    assert to_ours("model.model.transformer.layers.3.FiLM_gamma_sem.2.bias") == \
        "dit.transformer.layers.3.fusion.FiLM_gamma_sem.2.bias"
    assert to_ours("conditioner.conditioners.class.int_embedder.weight") == \
        "dit.conditioner.conditioners.cls.int_embedder.weight"
    assert to_ours("conditioner.conditioners.semantic.extractor.transformer.rotary_pos_emb."
                   "inv_freq") == "rhythm_predictor.transformer.rotary_pos_emb.inv_freq"
    assert to_ours("model.model.transformer.layers.0.pre_norm.beta") == \
        "dit.transformer.layers.0.pre_norm.beta"
    assert to_ours("pretransform.model.encoder.layers.1.layers.0.layers.1.weight_g") == \
        "autoencoder.encoder.1.0.net.1.parametrizations.weight.original0"
    assert to_ours("pretransform.model.decoder.layers.6.alpha") == "autoencoder.decoder.6.log_alpha"
    assert to_ours("pretransform.model.decoder.layers.1.layers.1.weight_v") == \
        "autoencoder.decoder.1.1.parametrizations.weight.original1"


# ---------------------------------------------------------------- 4: parameter counts

@needs_reference
def test_paper_parameter_counts_exact():
    cfg = official_config()
    with torch.device("meta"):
        model = DiffV2M(cfg)
    pub = _reference()
    unused = sum(math.prod(s) for s in known_unused(cfg).values())
    counts = model.parameter_counts()
    total = counts["total"]
    print(f"\n  paper model (meta): {total:,d} parameters; + known unused proj_out "
          f"{unused:,d} = {total + unused:,d}; published {PUBLISHED_PARAMS:,d}")
    for k, v in counts.items():
        print(f"    {k:18s} {v:>15,d}")
    assert total + unused == PUBLISHED_PARAMS
    assert total == 1_592_622_338
    assert count_parameters(model.autoencoder) == 77_989_888 + 78_122_626
    assert count_parameters(model.dit) - count_parameters(model.dit.conditioner) == 1_380_657_280
    # buffers: LayerNorm betas and rotary inv_freq are in the state dict as in the published one
    n_sd = sum(v.numel() for v in model.state_dict().values())
    assert n_sd == sum(math.prod(s) for k, s in pub.items() if k not in known_unused(cfg))


# ---------------------------------------------------------------- 1b: end to end, tiny

def test_cli_conversion_reproduces_weights_bit_exactly(tiny):
    cfg, _, sd, _, out = tiny
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert ModelConfig.from_json((out / "config.json").read_text()).to_dict() == cfg.to_dict()
    model, cfg2, meta = load_checkpoint(out / "model.safetensors")     # strict
    assert cfg2.to_dict() == cfg.to_dict() and cfg2.dit.published_wiring
    rep = meta["converted"]
    assert rep["weights"] == "online" and rep["ema_tensors_ignored"] > 0
    assert sorted(rep["ignored_training_extras"]) == sorted(EXTRAS)
    assert len(rep["dropped_unused"]) == 6
    ours = model.state_dict()
    assert len(ours) == rep["converted_tensors"]
    for k, v in ours.items():
        src = sd["diffusion." + to_published(k)]
        assert v.dtype == torch.float32 and torch.equal(v, src), k
    # forward passes run on the converted weights
    x = _inputs(cfg)
    with torch.no_grad():
        v = model.dit(**x)
        odf = model.rhythm_predictor(x["semantic"], torch.zeros(2, 5), torch.rand(2, 5),
                                     x["cls"])
        audio = model.autoencoder.decode(torch.randn(1, cfg.autoencoder.latent_dim, 3))
    assert v.shape == x["x"].shape and torch.isfinite(v).all()
    assert odf.shape == (2, 5) and torch.isfinite(odf).all()
    assert audio.shape == (1, 2, 3 * cfg.autoencoder.hop) and torch.isfinite(audio).all()


def test_use_ema_takes_the_dit_from_the_ema_copy(tiny, tmp_path):
    cfg, _, sd, ckpt, _ = tiny
    rep = convert_official(ckpt, tmp_path / "ema", use_ema=True, config=cfg)
    assert rep["weights"] == "ema" and rep["ema_tensors_used"] > 0
    model, _, _ = load_checkpoint(tmp_path / "ema" / "model.safetensors")
    n_dit = 0
    for k, v in model.state_dict().items():
        p = to_published(k)
        if p.startswith("model.model."):
            n_dit += 1
            assert torch.equal(v, sd["diffusion_ema.ema_model." + p[len("model."):]]), k
            assert not torch.equal(v, sd["diffusion." + p]), k
        else:                       # conditioners and VAE are never EMA'd
            assert torch.equal(v, sd["diffusion." + p]), k
    assert n_dit == rep["ema_tensors_used"]


def test_flat_safetensors_and_external_vae(tmp_path):
    from safetensors.torch import save_file
    cfg = tiny_config()
    flat = published_state(cfg, seed=1, training=False)
    no_vae = {k: v for k, v in flat.items() if not k.startswith("pretransform.")}
    src = tmp_path / "flat.safetensors"
    save_file(no_vae, str(src))
    # without a VAE the model is incomplete: refused, nothing written
    with pytest.raises(UserError, match="missing from the checkpoint.*pretransform.model"):
        convert_official(src, tmp_path / "a", config=cfg)
    assert not (tmp_path / "a").exists()
    # a Stable Audio Open style file: the VAE under pretransform.model. plus its own DiT
    vae = published_state(cfg, seed=2, training=False)
    sao = {k: v for k, v in vae.items() if k.startswith("pretransform.")}
    sao["model.model.some_other_dit.weight"] = torch.zeros(3)
    save_file(sao, str(tmp_path / "vae.safetensors"))
    rep = convert_official(src, tmp_path / "b", vae=tmp_path / "vae.safetensors", config=cfg)
    assert rep["vae"] == "vae.safetensors" and rep["layout"] == "flat"
    model, _, _ = load_checkpoint(tmp_path / "b" / "model.safetensors")
    for k, v in model.state_dict().items():
        p = to_published(k)
        assert torch.equal(v, (sao if p.startswith("pretransform.") else flat)[p]), k
    # --vae overrides the checkpoint's own VAE too; bare encoder./decoder. names work
    bare = {k[len("pretransform.model."):]: v for k, v in sao.items()
            if k.startswith("pretransform.")}
    save_file(bare, str(tmp_path / "bare.safetensors"))
    save_file(flat, str(tmp_path / "full.safetensors"))
    convert_official(tmp_path / "full.safetensors", tmp_path / "c",
                     vae=tmp_path / "bare.safetensors", config=cfg)
    m2, _, _ = load_checkpoint(tmp_path / "c" / "model.safetensors")
    assert torch.equal(m2.autoencoder.state_dict()["decoder.7.parametrizations.weight.original1"],
                       sao["pretransform.model.decoder.layers.7.weight_v"])


@pytest.mark.numerics
def test_weight_norm_fold_and_snake_layout(tiny, tmp_path):
    cfg, _, sd, _, out = tiny
    sd = dict(sd)
    k = "diffusion.pretransform.model.decoder.layers.6.alpha"    # Snake as [1, C, 1]
    sd[k] = sd[k].reshape(1, -1, 1)
    ckpt = save_lightning(tmp_path / "p.ckpt", sd)
    cfg_nw = replace(cfg, autoencoder=replace(cfg.autoencoder, weight_norm=False))
    rep = convert_official(ckpt, tmp_path / "nw", config=cfg_nw)
    assert rep["weight_norm_folded"] > 0 and rep["snake_reshaped"] == 1
    folded, _, _ = load_checkpoint(tmp_path / "nw" / "model.safetensors")
    ref, _, _ = load_checkpoint(out / "model.safetensors")
    assert torch.equal(folded.autoencoder.decoder[6].log_alpha, sd[k].reshape(-1))
    # the folded weight equals what torch's weight-norm parametrization computes
    w_ref = ref.autoencoder.decoder[0].weight
    assert torch.allclose(folded.autoencoder.decoder[0].weight, w_ref, rtol=1e-6, atol=1e-7)
    z = torch.randn(1, cfg.autoencoder.latent_dim, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref.autoencoder.decode(z), folded.autoencoder.decode(z)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max()))


# ---------------------------------------------------------------- 2: refusals

def _refuses(tmp_path, sd, cfg, match):
    ckpt = save_lightning(tmp_path / "bad.ckpt", sd)
    out = tmp_path / "out"
    with pytest.raises(UserError, match=match) as ei:
        convert_official(ckpt, out, config=cfg)
    assert "\n" not in str(ei.value)
    assert not out.exists()
    return str(ei.value)


def test_leftover_missing_and_misshaped_tensors_are_refused(tiny, tmp_path, capsys):
    cfg, cfg_path, sd, _, _ = tiny
    extra = dict(sd)
    extra["diffusion.model.model.transformer.layers.0.new_thing.weight"] = torch.zeros(2)
    msg = _refuses(tmp_path, extra, cfg, "refusing to write a partial model")
    assert "our model lacks" in msg and "new_thing" in msg
    unknown = dict(sd)
    unknown["diffusion.banana.weight"] = torch.zeros(2)
    assert "banana" in _refuses(tmp_path, unknown, cfg, "no rule maps")
    stray = dict(sd)
    stray["optimizer_shadow.x"] = torch.zeros(1)
    assert "optimizer_shadow.x" in _refuses(tmp_path, stray, cfg, "unknown wrapper")
    missing = {k: v for k, v in sd.items()
               if k != "diffusion.model.model.transformer.layers.1.cross_attn2.to_kv.weight"}
    assert "layers.1.cross_attn2.to_kv.weight" in _refuses(tmp_path, missing, cfg, "missing")
    shape = dict(sd)
    k = "diffusion.conditioner.conditioners.color.proj_out1.weight"
    shape[k] = torch.zeros(shape[k].shape[0], 7)
    _refuses(tmp_path, shape, cfg, r"shape mismatch.*color\.proj_out1\.weight")
    # through the CLI: one line, exit code 2, no output folder
    ckpt = save_lightning(tmp_path / "bad2.ckpt", missing)
    rc = cli.main(["convert", "official", str(ckpt), "-o", str(tmp_path / "o2"),
                   "--config", str(cfg_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("diffv2m: error:") and not (tmp_path / "o2").exists()
    # not a checkpoint at all
    (tmp_path / "junk.ckpt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        convert_official(tmp_path / "junk.ckpt", tmp_path / "o3", config=cfg)
    import argparse
    torch.save({"state_dict": {"a": torch.zeros(1)}, "hparams": argparse.Namespace(lr=1)},
               str(tmp_path / "pickled.ckpt"))                   # refused by weights_only
    with pytest.raises(UserError, match="objects other than tensors") as ei:
        convert_official(tmp_path / "pickled.ckpt", tmp_path / "o3", config=cfg)
    assert "\x1b" not in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(UserError, match="no such file"):
        convert_official(tmp_path / "nope.ckpt", tmp_path / "o3", config=cfg)


# ---------------------------------------------------------------- CLIP weights

def _fake_clip(vit_blocks: int = 12, proj=(768, 512)) -> dict[str, torch.Tensor]:
    sd = {"visual.conv1.weight": torch.randn(768, 3, 32, 32),
          "visual.class_embedding": torch.randn(768),
          "visual.positional_embedding": torch.randn(50, 768),
          "visual.proj": torch.randn(*proj)}
    for i in range(vit_blocks):
        sd[f"visual.transformer.resblocks.{i}.ln_1.weight"] = torch.randn(4)
    return sd


class _StubClip(torch.nn.Module):
    """Holds exactly the tensors of ``_fake_clip`` (open_clip cannot be installed here)."""

    def __init__(self):
        super().__init__()
        v = torch.nn.Module()
        v.conv1 = torch.nn.Conv2d(3, 768, 32, 32, bias=False)
        v.class_embedding = torch.nn.Parameter(torch.zeros(768))
        v.positional_embedding = torch.nn.Parameter(torch.zeros(50, 768))
        v.proj = torch.nn.Parameter(torch.zeros(768, 512))
        v.transformer = torch.nn.Module()
        v.transformer.resblocks = torch.nn.ModuleList(
            torch.nn.Module() for _ in range(12))
        for b in v.transformer.resblocks:
            b.ln_1 = torch.nn.Module()
            b.ln_1.weight = torch.nn.Parameter(torch.zeros(4))
        v.image_size = 224
        v.output_dim = 512
        self.visual = v


def test_clip_weights_are_checked_and_copied(tiny, tmp_path):
    from diffv2m.features.semantic import OpenClipEncoder
    cfg, _, _, ckpt, _ = tiny
    good = _fake_clip()
    torch.save(good, str(tmp_path / "clip.pt"))
    rep = convert_official(ckpt, tmp_path / "o", clip=tmp_path / "clip.pt", config=cfg)
    assert rep["semantic_weights"] == "clip.safetensors"
    enc = OpenClipEncoder.from_file(tmp_path / "o" / "clip.safetensors", "ViT-B-32",
                                    create_model=lambda name: _StubClip())
    assert enc.out_dim == 512 and enc.image_size == 224
    assert torch.equal(enc.model.visual.proj, good["visual.proj"])
    torch.save(_fake_clip(proj=(768, 256)), str(tmp_path / "bad.pt"))
    with pytest.raises(UserError, match="not an open_clip ViT-B-32"):
        convert_official(ckpt, tmp_path / "o2", clip=tmp_path / "bad.pt", config=cfg)
    torch.save(_fake_clip(vit_blocks=6), str(tmp_path / "bad6.pt"))
    with pytest.raises(UserError, match="6 image transformer blocks"):
        convert_official(ckpt, tmp_path / "o2", clip=tmp_path / "bad6.pt", config=cfg)
    assert not (tmp_path / "o2").exists()


# ---------------------------------------------------------------- wiring and ONNX

def test_published_wiring_colour_never_reaches_the_dit(tiny):
    cfg, _, _, _, out = tiny
    model, _, _ = load_checkpoint(out / "model.safetensors")
    x = _inputs(cfg)
    x2 = dict(x, colour=torch.rand_like(x["colour"]) * 5)
    with torch.no_grad():
        assert torch.equal(model.dit(**x), model.dit(**x2))
        # the rhythm stream does reach it (through the emotion and rhythm cross-attention)
        assert not torch.equal(model.dit(**x), model.dit(**dict(x, rhythm=x["rhythm"] + 0.5)))
    # without the switch the same weights do see the colour (the check can fail)
    model.dit.published_wiring = False
    with torch.no_grad():
        assert not torch.allclose(model.dit(**x), model.dit(**x2))


@pytest.mark.numerics
def test_converted_dit_exports_to_onnx_with_parity(tiny, tmp_path):
    """torch.onnx.export (dynamo=False, opset 17) of the converted DiT, onnxruntime parity.

    With the published wiring the colour input is dead code, and the TorchScript exporter
    prunes it from the graph (so ``export.onnx.export_onnx``'s check that every declared
    input exists refuses this model: see the report); the graph is run on the inputs it has."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings
    cfg, _, _, _, out = tiny
    model, _, _ = load_checkpoint(out / "model.safetensors")
    dit = model.dit.eval()
    x = _inputs(cfg, B=2, T=4, L=6, seed=5)
    names = list(x)
    dyn = {"x": {0: "batch", 2: "frames"}, "t": {0: "batch"}, "semantic": {0: "batch", 1: "s"},
           "rhythm": {0: "batch", 1: "s"}, "colour": {0: "batch", 1: "s"}, "cls": {0: "batch"},
           "seconds_start": {0: "batch"}, "seconds_total": {0: "batch"}, "v": {0: "batch", 2: "frames"}}
    path = tmp_path / "dit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(dit, tuple(x.values()), str(path), dynamo=False, opset_version=17,
                          input_names=names, output_names=["v"], dynamic_axes=dyn)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    graph_inputs = [i.name for i in graph.graph.input]
    assert "colour" not in graph_inputs and "rhythm" in graph_inputs   # colour is dead code
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # other sizes than the export example: batch 1, 6 seconds, 9 frames; t on both sides of 0.2
    for t in (0.7, 0.1):
        y = _inputs(cfg, B=1, T=6, L=9, seed=7)
        y["t"] = torch.tensor([t])
        with torch.no_grad():
            want = dit(**y).numpy()
        got = sess.run(None, {k: v.numpy() for k, v in y.items() if k in graph_inputs})[0]
        err = float(abs(got - want).max())
        scale = float(abs(want).max())
        print(f"\n  converted tiny DiT t={t}: onnxruntime vs torch max abs err {err:.3g} "
              f"(scale {scale:.3g})")
        assert got.shape == want.shape and err <= 1e-4 * max(scale, 1e-6)


def test_published_wiring_model_exports_and_runs_in_the_runtime(tmp_path):
    """The released wiring leaves colour unused; export prunes it and the runtime copes."""
    import numpy as np
    import torch
    from diffv2m.config import (AutoencoderConfig, DiTConfig, ModelConfig,
                                RhythmPredictorConfig, SemanticEncoderConfig)
    from diffv2m.export.onnx import export_onnx
    from diffv2m.export.runtime import load_runtime
    from diffv2m.models.checkpoint import save_checkpoint
    from diffv2m.models.diffv2m import DiffV2M
    torch.manual_seed(0)
    cfg = ModelConfig(name="wired", window_seconds=3, overlap_seconds=1, semantic_dim=8,
                      autoencoder=AutoencoderConfig(base_channels=2, channel_mults=(1, 1, 2, 2, 2),
                                                    latent_dim=4),
                      semantic=SemanticEncoderConfig(image_size=16, width=4, out_dim=8),
                      rhythm=RhythmPredictorConfig(width=8, depth=1, heads=2, pseudo_hidden=8),
                      dit=DiTConfig(embed_dim=16, depth=1, heads=2, cond_token_dim=8,
                                    global_cond_dim=24, global_cond_type="prepend",
                                    published_wiring=True, published_norms=True,
                                    seconds_tokens=True, context_pos_emb="none",
                                    timestep_features=16, fusion_t_dim=8, fusion_hidden=16,
                                    rhythm_hidden=8, colour_hidden=16))
    ckpt = tmp_path / "wired.safetensors"
    save_checkpoint(ckpt, DiffV2M(cfg), cfg)
    export_onnx(ckpt, tmp_path / "onnx")
    rt = load_runtime(tmp_path / "onnx")
    x = np.random.default_rng(0).standard_normal((1, 4, cfg.latent_frames)).astype(np.float32)
    args = dict(semantic=np.ones((1, 3, 8), np.float32), rhythm=np.ones((1, 3, 1), np.float32),
                cls=np.zeros(1, np.int64), seconds_start=np.zeros(1, np.float32),
                seconds_total=np.full(1, 3.0, np.float32))
    a = rt.denoise(x, np.full(1, 0.5, np.float32), colour=np.zeros((1, 3, 3072), np.float32), **args)
    b = rt.denoise(x, np.full(1, 0.5, np.float32), colour=np.ones((1, 3, 3072), np.float32), **args)
    assert np.array_equal(a, b) and np.isfinite(a).all()
