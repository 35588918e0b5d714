"""DiT, fusion, conditioners, rhythm predictor and semantic CNN at toy sizes."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from diffv2m.config import FUSIONS, DiTConfig, ModelConfig, RhythmPredictorConfig, \
    AutoencoderConfig, SemanticEncoderConfig
from diffv2m.models.dit import DiT
from diffv2m.models.fusion import make_fusion
from diffv2m.models.rhythm_predictor import RhythmPredictor, rhythm_loss
from diffv2m.models.semantic_cnn import SemanticCNN

torch.set_num_threads(1)

T, L, B = 5, 12, 2


def tiny_config(**dit) -> ModelConfig:
    d = dict(embed_dim=32, depth=2, heads=2, cond_token_dim=16, global_cond_dim=48,
             timestep_features=16, fusion_t_dim=8, fusion_hidden=16, rhythm_hidden=8,
             colour_hidden=8, max_seconds=8, cfg_dropout=0.5)
    d.update(dit)
    return ModelConfig(semantic_dim=12, colour_dim=3072,
                       autoencoder=AutoencoderConfig(latent_dim=8),
                       semantic=SemanticEncoderConfig(width=4, out_dim=12, image_size=32),
                       rhythm=RhythmPredictorConfig(width=16, depth=2, heads=2, max_seconds=8),
                       dit=DiTConfig(**d))


def randomise(m: nn.Module, seed: int = 0) -> nn.Module:
    """Non-zero random weights everywhere (zero-initialised branches would hide effects)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            std = (p[0].numel() ** -0.5) if p.dim() >= 2 else 0.5
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return m.eval()


def inputs(cfg: ModelConfig, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(B, cfg.autoencoder.latent_dim, L, generator=g),
                semantic=torch.randn(B, T, cfg.semantic_dim, generator=g),
                rhythm=torch.rand(B, T, 1, generator=g),
                colour=torch.rand(B, T, cfg.colour_dim, generator=g),
                cls=torch.tensor([0, 2]), seconds_start=torch.tensor([0.0, 3.0]),
                seconds_total=torch.tensor([5.0, 8.0]))


def run(m: DiT, inp: dict, t: float, **over) -> torch.Tensor:
    a = {**inp, **over}
    with torch.no_grad():
        return m(a["x"], torch.full((B,), t), a["semantic"], a["rhythm"], a["colour"], a["cls"],
                 a["seconds_start"], a["seconds_total"])


def differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    """More than float noise apart (relative to the magnitude of the outputs)."""
    scale = 1.0 + max(a.abs().max().item(), b.abs().max().item())
    return (a - b).abs().max().item() > 1e-5 * scale


# ------------------------------------------------------------------ fusion modules

def _branches(seed=0, n=3, d=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, n, d, generator=g), torch.randn(B, n, d, generator=g)


@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_shapes_and_factory(name):
    f = make_fusion(name, 16, 8)
    hs, hr = _branches()
    assert f(hs, hr, torch.tensor([0.3, 0.7])).shape == hs.shape
    with pytest.raises(ValueError):
        make_fusion("nonsense", 16, 8)


def test_fusion_average_and_semantic_ignore_t():
    hs, hr = _branches()
    for name in ("average", "semantic"):
        f = make_fusion(name, 16, 8)
        lo, hi = f(hs, hr, torch.full((B,), 0.1)), f(hs, hr, torch.full((B,), 0.9))
        torch.testing.assert_close(lo, hi)
    torch.testing.assert_close(make_fusion("average", 16, 8)(hs, hr, torch.zeros(B)),
                               0.5 * hs + 0.5 * hr)
    f = make_fusion("semantic", 16, 8)
    torch.testing.assert_close(f(hs, hr + 1.0, torch.zeros(B)), hs)


@pytest.mark.parametrize("name", ["FiLM_choose", "choose"])
def test_fusion_switches_branch_at_threshold(name):
    torch.manual_seed(0)
    f = make_fusion(name, 16, 8, threshold=0.2)
    hs, hr = _branches()
    dh = torch.randn_like(hs)
    for t, sem_matters in ((0.9, True), (0.1, False)):
        tt = torch.full((B,), t)
        base = f(hs, hr, tt)
        assert differs(f(hs + dh, hr, tt), base) == sem_matters
        assert differs(f(hs, hr + dh, tt), base) == (not sem_matters)
    # per-sample choice inside one batch (torch.where, no Python branching)
    tt = torch.tensor([0.9, 0.1])
    out, out_s = f(hs, hr, tt), f(hs + dh, hr, tt)
    assert differs(out_s[0], out[0]) and not differs(out_s[1], out[1])
    if name == "choose":
        torch.testing.assert_close(out[0], hs[0])
        torch.testing.assert_close(out[1], hr[1])


def test_fusion_film_depends_on_t_and_both_branches():
    torch.manual_seed(0)
    f = make_fusion("FiLM", 16, 8)
    hs, hr = _branches()
    lo, hi = f(hs, hr, torch.full((B,), 0.1)), f(hs, hr, torch.full((B,), 0.9))
    assert differs(lo, hi)
    for t in (0.1, 0.9):
        tt = torch.full((B,), t)
        assert differs(f(hs + 1, hr, tt), f(hs, hr, tt))
        assert differs(f(hs, hr + 1, tt), f(hs, hr, tt))
    # FiLM form: gamma * h + beta per branch, summed
    g_s, b_s, g_r, b_r = f.modulations(torch.full((B,), 0.5), B)
    assert ((g_s > 0) & (g_s < 1)).all()
    torch.testing.assert_close(f(hs, hr, torch.full((B,), 0.5)),
                               g_s * hs + b_s + g_r * hr + b_r)


def test_fusion_gate_smooth_in_t():
    torch.manual_seed(0)
    f = make_fusion("gate", 16, 8)
    ts = torch.linspace(0, 1, 101)
    alpha = f.alpha(ts, len(ts)).flatten()
    assert ((alpha > 0) & (alpha < 1)).all()
    assert alpha.max() - alpha.min() > 1e-4                       # varies with t ...
    assert (alpha[1:] - alpha[:-1]).abs().max() < 0.05            # ... smoothly
    hs, hr = _branches()
    a = f.alpha(torch.full((B,), 0.3), B)
    torch.testing.assert_close(f(hs, hr, torch.full((B,), 0.3)), a * hs + (1 - a) * hr)


# ------------------------------------------------------------------ DiT

@pytest.mark.parametrize("gtype", ["adaLN", "prepend"])
@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "none"])
def test_dit_forward_shapes(gtype, pos):
    cfg = tiny_config(global_cond_type=gtype, context_pos_emb=pos,
                      seconds_tokens=(pos == "none"))
    m = randomise(DiT(cfg))
    inp = inputs(cfg)
    v = run(m, inp, 0.5)
    assert v.shape == inp["x"].shape and torch.isfinite(v).all()
    # rhythm given as [B, T] works too
    torch.testing.assert_close(run(m, inp, 0.5, rhythm=inp["rhythm"][..., 0]), v)


def test_dit_prepend_token_is_removed():
    cfg = tiny_config(global_cond_type="prepend")
    m = randomise(DiT(cfg))
    seen = []
    h = m.transformer.layers[0].register_forward_hook(lambda mod, a, out: seen.append(out.shape))
    v = run(m, inputs(cfg), 0.5)
    h.remove()
    assert seen[0][1] == L + 1                       # the layers see the global-cond token
    assert v.shape[-1] == L                          # ... which is gone from the output
    # the prepended token carries the global condition: class changes the output
    assert differs(run(m, inputs(cfg), 0.5, cls=torch.tensor([1, 1])), v)
    # and adaLN layers see only the L latent tokens
    cfg2 = tiny_config(global_cond_type="adaLN")
    m2 = randomise(DiT(cfg2))
    seen.clear()
    h = m2.transformer.layers[0].register_forward_hook(lambda mod, a, out: seen.append(out.shape))
    run(m2, inputs(cfg2), 0.5)
    h.remove()
    assert seen[0][1] == L


def test_dit_film_choose_uses_semantic_early_rhythm_late():
    cfg = tiny_config(fusion="FiLM_choose", choose_threshold=0.2)
    m = randomise(DiT(cfg))
    inp = inputs(cfg)
    sem2 = inp["semantic"] + torch.randn_like(inp["semantic"])
    rhy2 = torch.rand_like(inp["rhythm"])
    for t, sem_matters in ((0.9, True), (0.1, False)):
        base = run(m, inp, t)
        assert differs(run(m, inp, t, semantic=sem2), base) == sem_matters
        assert differs(run(m, inp, t, rhythm=rhy2), base) == (not sem_matters)


def test_dit_published_wiring_makes_colour_irrelevant():
    inp = None
    for wiring, colour_matters in ((False, True), (True, False)):
        cfg = tiny_config(published_wiring=wiring)
        m = randomise(DiT(cfg))
        inp = inputs(cfg)
        base = run(m, inp, 0.5)
        other = run(m, inp, 0.5, colour=torch.rand_like(inp["colour"]))
        assert differs(other, base) == colour_matters


def test_dit_published_norms_changes_block_but_not_keys():
    a, b = DiT(tiny_config()), DiT(tiny_config(published_norms=True))
    assert a.state_dict().keys() == b.state_dict().keys()
    b.load_state_dict(a.state_dict())
    randomise(a), randomise(b)
    assert differs(run(a, inputs(a_cfg := tiny_config()), 0.5), run(b, inputs(a_cfg), 0.5))


def test_cfg_dropout_zeroes_streams():
    cfg = tiny_config()
    m = DiT(cfg)
    inp = inputs(cfg)
    s, r, c = m.drop_conditions(inp["semantic"], inp["rhythm"], inp["colour"], p=1.0)
    assert not s.any() and not r.any() and not c.any()
    s, r, c = m.drop_conditions(inp["semantic"], inp["rhythm"], inp["colour"], p=0.0)
    assert torch.equal(s, inp["semantic"]) and torch.equal(c, inp["colour"])
    # p = cfg_dropout (0.5): each (sample, stream) is either untouched or all zero; both occur
    n = 64
    sem = torch.randn(n, T, cfg.semantic_dim) + 5
    rhy = torch.rand(n, T, 1) + 1
    col = torch.rand(n, T, cfg.colour_dim) + 1
    out = m.drop_conditions(sem, rhy, col, generator=torch.Generator().manual_seed(0))
    kept = []
    for o, x in zip(out, (sem, rhy, col)):
        zero = (o == 0).flatten(1).all(1)
        same = (o == x).flatten(1).all(1)
        assert (zero ^ same).all()
        kept.append(same)
    kept = torch.stack(kept, 1)
    assert 0 < kept.float().mean() < 1
    assert not (kept[:, 0] == kept[:, 1]).all()          # streams drop independently


def test_context_positions_let_dit_see_time_order():
    """With per-second positions, reversing the rhythm in time changes v; with none and a
    context that is a set (no positions), reversing all context streams does not."""
    g = torch.Generator().manual_seed(3)
    for pos, matters in (("learned", True), ("sinusoidal", True), ("none", False)):
        cfg = tiny_config(context_pos_emb=pos)
        m = randomise(DiT(cfg))
        inp = inputs(cfg)
        flip = {k: inp[k].flip(1) for k in ("semantic", "rhythm", "colour")}
        assert differs(run(m, inp, 0.5, **flip), run(m, inp, 0.5)) == matters


# ------------------------------------------------------------------ rhythm predictor, CNN

@pytest.mark.numerics
def test_rhythm_predictor_shapes_and_range():
    cfg = tiny_config()
    rp = randomise(RhythmPredictor(cfg))
    g = torch.Generator().manual_seed(0)
    sem = torch.randn(B, T, cfg.semantic_dim, generator=g)
    cut = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=torch.float32)
    beat = torch.rand(B, T, generator=g)
    y = rp(sem, cut, beat, torch.tensor([0, 1]))
    assert y.shape == (B, T) and ((y >= 0) & (y <= 1)).all()
    assert differs(rp(sem, 1 - cut, beat, torch.tensor([0, 1])), y)
    assert differs(rp(sem, cut, beat, torch.tensor([2, 2])), y)
    # per-sample normalisation: scaling the semantic features changes nothing
    torch.testing.assert_close(rp(sem * 3 + 1, cut, beat, torch.tensor([0, 1])), y,
                               atol=1e-4, rtol=1e-4)
    cfg16 = dataclasses.replace(cfg, rhythm=dataclasses.replace(
        cfg.rhythm, out_dim=16, output_activation="none", use_scene_cut=False,
        use_pseudo_beat=False))
    y16 = RhythmPredictor(cfg16)(sem, cut, beat, torch.tensor([0, 1]))
    assert y16.shape == (B, T, 16)


def test_rhythm_loss():
    target = torch.rand(B, T)
    assert rhythm_loss(target, target).item() == 0.0
    assert rhythm_loss(target, target, corr_weight=1.0).item() < 1e-5
    anti = 1 - target
    assert rhythm_loss(anti, target, corr_weight=1.0).item() > rhythm_loss(anti, target).item() + 1.5


def test_semantic_cnn_shape():
    cnn = SemanticCNN(width=4, out_dim=12)
    y = cnn(torch.randn(3, 3, 64, 64))
    assert y.shape == (3, 12)


@pytest.mark.numerics
def test_dit_exports_to_onnx_with_per_sample_switch(tmp_path):
    """FiLM_choose uses torch.where on t: one exported graph handles t on both sides of the
    threshold in one batch (TorchScript exporter, fast; the dynamo path is export's job)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings
    cfg = tiny_config(global_cond_type="prepend", fusion="FiLM_choose")
    m = randomise(DiT(cfg))
    inp = inputs(cfg)
    names = ["x", "t", "semantic", "rhythm", "colour", "cls", "seconds_start", "seconds_total"]
    args = tuple(torch.tensor([0.9, 0.1]) if n == "t" else inp[n] for n in names)
    dyn = {n: {0: "B"} for n in names} | {"x": {0: "B", 2: "L"}, "v": {0: "B", 2: "L"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, args, str(tmp_path / "dit.onnx"), opset_version=17, dynamo=False,
                          input_names=names, output_names=["v"], dynamic_axes=dyn)
    sess = ort.InferenceSession(str(tmp_path / "dit.onnx"), providers=["CPUExecutionProvider"])
    feed = {i.name: dict(zip(names, args))[i.name].numpy() for i in sess.get_inputs()}
    with torch.no_grad():
        ref = m(*args).numpy()
    out = sess.run(None, feed)[0]
    assert abs(out - ref).max() < 1e-4
    # swap the two samples' t: the graph switches branch per sample at run time
    feed["t"] = feed["t"][::-1].copy()
    with torch.no_grad():
        ref2 = m(*[torch.from_numpy(feed[n]) if n == "t" else a
                   for n, a in zip(names, args)]).numpy()
    assert abs(sess.run(None, feed)[0] - ref2).max() < 1e-4


def test_dit_cue_track_enters_frame_by_frame():
    """With a cue track the DiT's output depends on it (zero-initialised, so it starts as
    a no-op); without one (the paper config) cues are ignored."""
    cfg = tiny_config(cue_channels=2)
    m = DiT(cfg).eval()
    inp = inputs(cfg)
    base = run(m, inp, 0.5)
    q = torch.rand(B, 2, L)
    with torch.no_grad():
        fresh = m(inp["x"], torch.full((B,), 0.5), inp["semantic"], inp["rhythm"], inp["colour"],
                  inp["cls"], inp["seconds_start"], inp["seconds_total"], q)
    assert not differs(fresh, base)                    # zero init: no effect yet
    randomise(m)
    base = run(m, inp, 0.5)

    def with_cues(cues):
        with torch.no_grad():
            return m(inp["x"], torch.full((B,), 0.5), inp["semantic"], inp["rhythm"],
                     inp["colour"], inp["cls"], inp["seconds_start"], inp["seconds_total"], cues)
    assert differs(with_cues(q), base)
    assert not differs(with_cues(torch.zeros(B, 2, L)), base)      # all-zero = the null track
    assert differs(with_cues(q.roll(3, dims=-1)), with_cues(q))     # where a cue is matters
    plain = randomise(DiT(tiny_config()))
    assert "cue_embed.weight" not in plain.state_dict()
