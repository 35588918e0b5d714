"""Semantic encoder input preprocessing and the local-weights open_clip loader."""
import numpy as np
import pytest

from diffv2m.errors import UserError
from diffv2m.features import semantic


def test_preprocess_shape_and_normalisation():
    frames = np.zeros((3, 20, 30, 3), np.uint8)
    frames[..., 0] = 255
    x = semantic.preprocess(frames, 16, semantic.CLIP_MEAN, semantic.CLIP_STD)
    assert x.shape == (3, 3, 16, 16) and x.dtype == np.float32
    expect = (np.array([1.0, 0.0, 0.0]) - semantic.CLIP_MEAN) / semantic.CLIP_STD
    np.testing.assert_allclose(x[:, :, 5, 7], np.broadcast_to(expect, (3, 3)), rtol=1e-5)
    one = semantic.preprocess(frames[0], 16, (0.5,) * 3, (0.25,) * 3)
    assert one.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(one[0, 0], 2.0)
    np.testing.assert_allclose(one[0, 1], -2.0)


def test_preprocess_keeps_layout():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = semantic.preprocess(frames, 8, (0, 0, 0), (1, 1, 1))      # no resize needed
    np.testing.assert_allclose(x, frames.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)


def _tiny_model_factory():
    torch = pytest.importorskip("torch")

    class Visual(torch.nn.Module):
        image_size = 16
        output_dim = 8

    class Tiny(torch.nn.Module):
        """Stands in for an open_clip model: ``visual`` metadata and ``encode_image``."""

        def __init__(self):
            super().__init__()
            self.visual = Visual()
            self.proj = torch.nn.Linear(3 * 16 * 16, 8)

        def encode_image(self, x):
            return self.proj(x.flatten(1))

    return torch, Tiny


@pytest.mark.numerics
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_from_file_loads_local_weights_into_a_fresh_model(tmp_path, suffix):
    torch, Tiny = _tiny_model_factory()
    torch.manual_seed(0)
    src = Tiny()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(src.state_dict(), str(path))
    else:   # a wrapped, DataParallel-style checkpoint
        torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    enc = semantic.OpenClipEncoder.from_file(path, "tiny", create_model=lambda name: Tiny())
    assert isinstance(enc, semantic.SemanticEncoder)
    assert (enc.image_size, enc.out_dim) == (16, 8)
    frames = np.random.default_rng(1).integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
    out = enc.encode(frames)
    assert out.shape == (5, 8) and out.dtype == np.float32
    with torch.no_grad():
        ref = src.encode_image(torch.from_numpy(semantic.preprocess(frames, 16))).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_from_file_errors_name_the_file(tmp_path):
    torch, Tiny = _tiny_model_factory()
    with pytest.raises(UserError, match="nope.pt: no such"):
        semantic.OpenClipEncoder.from_file(tmp_path / "nope.pt", create_model=lambda n: Tiny())
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match="bad.safetensors: cannot read"):
        semantic.OpenClipEncoder.from_file(bad, create_model=lambda n: Tiny())
    wrong = tmp_path / "wrong.pt"
    torch.save({"proj.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(UserError, match="wrong.pt: weights do not fit"):
        semantic.OpenClipEncoder.from_file(wrong, "tiny", create_model=lambda n: Tiny())


def test_open_clip_vit_b32_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    try:
        import open_clip
    except Exception as exc:  # not installed, or its torchvision import fails (no CPU wheel)
        pytest.skip(f"open_clip not importable here ({type(exc).__name__}: {exc})")
    torch.manual_seed(0)
    src = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    from safetensors.torch import save_file
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    enc = semantic.OpenClipEncoder.from_file(path, "ViT-B-32")
    assert (enc.image_size, enc.out_dim) == (224, 512)
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    out = enc.encode(frames)
    assert out.shape == (2, 512)
    with torch.no_grad():
        x = torch.from_numpy(semantic.preprocess(frames, 224))
        ref = src.encode_image(x).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
