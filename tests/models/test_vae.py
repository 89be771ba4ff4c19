import pytest
import torch

from aime.models.vae import FixedGaussian, FrameDecoder, FrameEncoder, LogisticMixture, Posterior


@pytest.mark.parametrize("preset", ["tiny_cfg", "default_cfg"])
def test_encoder_decoder_shapes(preset, request):
    cfg = request.getfixturevalue(preset)
    v, S = cfg.vae, cfg.image_size
    enc = FrameEncoder(
        image_size=S,
        channels=v.channels,
        blocks_per_stage=v.blocks_per_stage,
        embed_dim=v.embed_dim,
        spectral=v.spectral_norm,
    )
    assert enc.final_size == 4  # both presets end the conv stages at 4x4
    e = enc(torch.zeros(2, 3, 3, S, S))
    assert e.shape == (2, 3, v.embed_dim), e.shape
    dec = FrameDecoder(in_dim=5, image_size=S, channels=v.channels, blocks_per_stage=1, out_channels=30)
    assert dec(torch.zeros(2, 3, 5)).shape == (2, 3, 30, S, S)
    mean, std = Posterior(in_dim=7, hidden_dim=8, latent_dim=4, min_std=0.1)(torch.randn(2, 3, 7))
    assert mean.shape == std.shape == (2, 3, 4) and bool((std >= 0.1).all())


def test_encoder_uses_spectral_norm():
    enc = FrameEncoder(image_size=32, channels=(8, 16, 32), blocks_per_stage=1, embed_dim=8, spectral=True)
    names = [n for n, _ in enc.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names), names


def test_logistic_mixture_is_a_distribution_over_256_levels():
    torch.manual_seed(0)
    lik = LogisticMixture(components=3)
    params = (torch.randn(1, lik.param_channels, 1, 1) * 2).expand(256, -1, -1, -1)
    levels = torch.arange(256, dtype=torch.float32) / 127.5 - 1.0  # every value a pixel can take
    # Sweep one channel over all levels with the others at -1: the mass is P(others = -1). Channels
    # are independent, so log P(all = -1) must equal half the sum of the three sweeps' log masses.
    sweeps = []
    for c in range(3):
        x = torch.full((256, 3, 1, 1), -1.0)
        x[:, c, 0, 0] = levels
        sweeps.append(torch.logsumexp(lik.log_prob(params, x), 0))
    corner = lik.log_prob(params[:1], torch.full((1, 3, 1, 1), -1.0))[0]
    torch.testing.assert_close(corner, 0.5 * torch.stack(sweeps).sum(), atol=1e-4, rtol=0)
    assert bool((lik.log_prob(params, torch.rand(256, 3, 1, 1) * 2 - 1) <= 0).all())


def test_logistic_mixture_mean_and_sample_are_images():
    lik = LogisticMixture(components=2)
    params = torch.randn(4, lik.param_channels, 8, 8)
    for img in (lik.mean(params), lik.sample(params)):
        assert img.shape == (4, 3, 8, 8) and bool((img.abs() <= 1).all())


def test_logistic_mixture_log_prob_is_finite_for_extreme_scales():
    lik = LogisticMixture(components=1)
    params = torch.zeros(3, lik.param_channels, 2, 2)
    params[:, 6:9] = -7.0  # tiny scales: bins far from the mean must not give -inf or nan
    x = torch.tensor([-1.0, 0.3, 1.0]).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    assert bool(torch.isfinite(lik.log_prob(params, x)).all())


def test_gaussian_likelihood():
    lik = FixedGaussian(std=0.1)
    x = torch.zeros(2, 3, 4, 4)
    assert lik.log_prob(x, x).shape == (2,) and bool((lik.log_prob(x, x) > lik.log_prob(x + 0.5, x)).all())
