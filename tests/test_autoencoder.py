"""Oobleck-style VAE (diffv2m.models.autoencoder), its losses and the numpy recon metrics."""
import numpy as np
import pytest
import torch

from diffv2m.config import AutoencoderConfig, paper_config, small_config
from diffv2m.evaluate.recon_metrics import mel_distance, mrstft_distance, si_sdr
from diffv2m.models.audio_losses import (AutoencoderLoss, MelLoss, MultiResolutionSTFTLoss,
                                         STFTDiscriminator, hinge_d_loss, kl_loss)
from diffv2m.models.autoencoder import Autoencoder, Snake, count_parameters

TINY = AutoencoderConfig(sample_rate=8000, base_channels=8, channel_mults=(1, 2, 2),
                         strides=(2, 4, 5), latent_dim=8)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions: one thread avoids OpenMP spin contention on a shared 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sine_click(sr, n, f=440.0):
    t = np.arange(n) / sr
    x = 0.5 * np.sin(2 * np.pi * f * t)
    x[:: sr // 8] += 0.8  # clicks, 8 per second
    return x.astype(np.float32)


def test_small_config_shapes_and_padding():
    torch.manual_seed(0)
    cfg = small_config().autoencoder
    ae = Autoencoder(cfg).eval()
    assert cfg.hop == 1000 and cfg.latent_rate == 24.0
    n = 3 * cfg.hop + 17  # not a multiple of hop: padded to 4 frames
    audio = torch.randn(2, cfg.audio_channels, n) * 0.1
    with torch.no_grad():
        mean, logvar = ae.encode(audio)
        assert mean.shape == logvar.shape == (2, cfg.latent_dim, 4)
        z = ae.encode_latent(audio)
        torch.testing.assert_close(z, mean)
        zs = ae.encode_latent(audio, deterministic=False,
                              generator=torch.Generator().manual_seed(1))
        assert zs.shape == z.shape and not torch.allclose(zs, z)
        out = ae.decode(z)
        assert out.shape == (2, cfg.audio_channels, 4 * cfg.hop)
        recon, kl = ae(audio)
        assert recon.shape == (2, cfg.audio_channels, 4 * cfg.hop) and kl.ndim == 0 and kl >= 0
    n_params = count_parameters(ae)
    print(f"small AE: encoder {count_parameters(ae.encoder):,} decoder "
          f"{count_parameters(ae.decoder):,} total {n_params:,}")
    assert 1_000_000 <= n_params <= 5_000_000


def test_paper_config_on_meta_device():
    cfg = paper_config().autoencoder
    with torch.device("meta"):
        ae = Autoencoder(cfg)
        z = torch.empty(1, cfg.latent_dim, 3)
        out = ae.decode(z)
        mean, logvar = ae.encode(torch.empty(1, 2, 3 * cfg.hop))
    assert cfg.hop == 2048
    assert out.shape == (1, 2, 3 * 2048) and mean.shape == (1, 64, 3)
    enc, dec = count_parameters(ae.encoder), count_parameters(ae.decoder)
    print(f"paper AE: encoder {enc:,} decoder {dec:,}")
    # Published Stable Audio Open VAE: encoder 77,989,888, decoder 78,122,626.
    assert enc == 77_989_888 and dec == 78_122_626


def test_odd_strides_keep_exact_lengths():
    ae = Autoencoder(AutoencoderConfig(base_channels=4, channel_mults=(1, 2), strides=(3, 5),
                                       latent_dim=4, weight_norm=False))
    with torch.no_grad():
        z = ae.encode_latent(torch.randn(1, 1, 15 * 7))
        assert z.shape == (1, 4, 7)
        assert ae.decode(z).shape == (1, 1, 105)


def test_snake_is_identity_plus_periodic_term():
    s = Snake(3)
    x = torch.linspace(-3, 3, 50).repeat(1, 3, 1)
    torch.testing.assert_close(s(x), x + torch.sin(x) ** 2)
    assert {n for n, _ in s.named_parameters()} == {"log_alpha", "log_beta"}


@pytest.mark.numerics
def test_remove_weight_norm_keeps_outputs():
    torch.manual_seed(0)
    ae = Autoencoder(TINY).eval()
    z = torch.randn(1, TINY.latent_dim, 5)
    with torch.no_grad():
        before = ae.decode(z)
        ae.remove_weight_norm()
        after = ae.decode(z)
    assert not any("parametrizations" in n for n, _ in ae.named_parameters())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


@pytest.mark.numerics
def test_a_few_steps_reduce_mrstft_loss():
    """60 Adam steps (one thread, see ``one_thread``) bring the MR-STFT loss below 0.9 of its
    start. What is guaranteed is that the loss falls, not one trajectory: the path depends on the
    CPU kernels that run, since rounding differences are amplified by training. Measured end/start
    ratio over seeds 0-15 x {ATEN_CPU_CAPABILITY=default, avx2, avx512, ONEDNN_MAX_CPU_ISA=AVX2}
    (AMD EPYC, AVX-512): mean 0.718, sd 0.057, worst 0.813; seed 0: 0.669 / 0.672 / 0.672 / 0.763
    (start 5.283 on every path). After 30 steps the spread was too wide for any useful limit
    (worst 0.933; an Intel AVX-512/AMX box failed the old 30-step 0.8 limit with 0.812)."""
    torch.manual_seed(0)
    ae = Autoencoder(TINY)
    loss_fn = AutoencoderLoss(TINY.sample_rate, fft_sizes=(512, 256, 128))
    audio = torch.from_numpy(sine_click(TINY.sample_rate, 4000))[None, None]
    opt = torch.optim.Adam(list(ae.parameters()), lr=3e-3)
    mrstft = MultiResolutionSTFTLoss((512, 256, 128))

    def eval_loss():
        with torch.no_grad():
            return mrstft(ae.decode(ae.encode_latent(audio))[..., :4000], audio).item()

    start = eval_loss()
    for _ in range(60):
        mean, logvar = ae.encode(audio)
        recon = ae.decode(ae.sample(mean, logvar))
        terms = loss_fn(recon, audio, mean, logvar)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    end = eval_loss()
    assert set(terms) == {"mrstft", "mel", "kl", "total"}
    print(f"mrstft {start:.3f} -> {end:.3f}")
    assert np.isfinite(end) and end < 0.9 * start, (start, end)


def test_losses_zero_for_identical_and_positive_otherwise():
    x = torch.from_numpy(sine_click(16000, 8000))[None, None]
    y = x + 0.05 * torch.randn_like(x)
    mr, mel = MultiResolutionSTFTLoss(), MelLoss(16000)
    assert mr(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert mel(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert mr(y, x).item() > 0.1 and mel(y, x).item() > 0.1
    m = torch.zeros(1, 4, 3)
    assert kl_loss(m, m).item() == 0.0 and kl_loss(m + 1, m).item() == pytest.approx(2.0)


def test_discriminator_and_hinge_loss():
    torch.manual_seed(0)
    d = STFTDiscriminator(audio_channels=2, fft_sizes=(256, 128), width=8)
    x = torch.randn(2, 2, 2048)
    outs = d(x)
    assert len(outs) == 2 and all(o.shape[0] == 2 and len(f) == 4 for o, f in outs)
    loss = hinge_d_loss(outs, d(x * 0.5))
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in d.parameters())
    adv = AutoencoderLoss(8000, audio_channels=2, adversarial=True, fft_sizes=(256, 128))
    mean = torch.zeros(2, 4, 2)
    terms = adv(x, x * 0.9, mean, mean)
    assert {"adv", "fm"} <= set(terms)
    assert adv.discriminator_loss(x, x * 0.9).item() > 0


@pytest.mark.numerics
def test_decoder_onnx_export_parity(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    ae = Autoencoder(small_config().autoencoder).eval().remove_weight_norm()
    z = torch.randn(1, ae.cfg.latent_dim, 6)
    path = tmp_path / "decoder.onnx"
    torch.onnx.export(ae.decoder, (z,), str(path), dynamo=False, opset_version=17,
                      input_names=["z"], output_names=["audio"],
                      dynamic_axes={"z": {0: "batch", 2: "frames"},
                                    "audio": {0: "batch", 2: "samples"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z2 = torch.randn(2, ae.cfg.latent_dim, 9)  # other sizes: axes stayed dynamic
    for zz in (z, z2):
        (got,) = sess.run(None, {"z": zz.numpy()})
        with torch.no_grad():
            want = ae.decode(zz).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_recon_metrics():
    sr = 16000
    x = sine_click(sr, sr)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(sr).astype(np.float32)
    assert mrstft_distance(x, x) == 0.0
    assert mel_distance(x, x, sr) == 0.0
    assert mrstft_distance(x, x + 0.1 * noise) > 0.1
    assert mel_distance(x, noise, sr) > mel_distance(x, x + 0.01 * noise, sr) > 0
    assert si_sdr(x, x) > 80
    assert si_sdr(x, 3.0 * x) > 80  # scale invariant
    assert si_sdr(x, noise) < -10
    assert 15 < si_sdr(x, x + 0.05 * noise * x.std()) < 35
    stereo = np.stack([x, -x])
    assert si_sdr(stereo, stereo[:, :-5]) > 80  # lengths are matched
    with pytest.raises(ValueError):
        si_sdr(stereo, x)
