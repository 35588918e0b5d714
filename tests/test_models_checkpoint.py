"""DiffV2M container and safetensors checkpoints: bit-exact round trip, clear errors."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from diffv2m.errors import UserError
from diffv2m.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from diffv2m.models.diffv2m import DiffV2M

from test_models_dit import inputs, randomise, run, tiny_config

torch.set_num_threads(1)


class PlaceholderAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.proj = nn.Conv1d(cfg.latent_dim, cfg.audio_channels, 1)


def test_container_children_and_counts():
    m = DiffV2M(tiny_config(), autoencoder=PlaceholderAE)
    names = [n for n, _ in m.named_children()]
    assert names == ["autoencoder", "semantic_encoder", "rhythm_predictor", "dit"]
    c = m.parameter_counts()
    assert c["total"] == sum(c[k] for k in names)
    assert c["dit"] == c["dit.core"] + c["dit.conditioner"] and c["dit.conditioner"] > 0
    assert all(k.split(".")[0] in names for k in m.state_dict())
    clip = dataclasses.replace(tiny_config(), semantic=dataclasses.replace(
        tiny_config().semantic, backend="open_clip"))
    m2 = DiffV2M(clip, autoencoder=PlaceholderAE)
    assert isinstance(m2.semantic_encoder, nn.Identity)


def test_checkpoint_round_trip_bit_exact(tmp_path):
    cfg = tiny_config()
    m = randomise(DiffV2M(cfg, autoencoder=PlaceholderAE))
    path = save_checkpoint(tmp_path / "m.safetensors", m, cfg, meta={"steps": 12, "note": "x"})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]      # no temp leftovers
    m2, cfg2, meta = load_checkpoint(path, autoencoder=PlaceholderAE)
    assert cfg2 == cfg and meta == {"steps": 12, "note": "x"}
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert torch.equal(sd[k], sd2[k]), k
    inp = inputs(cfg)
    assert torch.equal(run(m.dit, inp, 0.4), run(m2.dit, inp, 0.4))
    assert read_metadata(path) == (cfg, meta)


def test_checkpoint_with_project_autoencoder(tmp_path):
    pytest.importorskip("diffv2m.models.autoencoder")
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, autoencoder=dataclasses.replace(
        cfg.autoencoder, base_channels=2, channel_mults=(1, 2), strides=(2, 2)))
    m = DiffV2M(cfg)
    path = save_checkpoint(tmp_path / "m.safetensors", m, cfg)
    m2, cfg2, _ = load_checkpoint(path)
    assert type(m2.autoencoder) is type(m.autoencoder)
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_checkpoint_errors(tmp_path):
    cfg = tiny_config()
    with pytest.raises(UserError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors", autoencoder=PlaceholderAE)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match="bad.safetensors"):
        load_checkpoint(bad, autoencoder=PlaceholderAE)
    from safetensors.torch import save_file
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(2)}, str(plain))
    with pytest.raises(UserError, match="no config"):
        load_checkpoint(plain, autoencoder=PlaceholderAE)
    # a checkpoint whose tensors do not match its config: strict loading refuses it
    m = DiffV2M(cfg, autoencoder=PlaceholderAE)
    path = save_checkpoint(tmp_path / "m.safetensors", m, cfg)
    other = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, depth=3))
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys()}
    save_file(sd, str(path), metadata={"config": other.to_json()})
    with pytest.raises(UserError, match="does not match"):
        load_checkpoint(path, autoencoder=PlaceholderAE)
