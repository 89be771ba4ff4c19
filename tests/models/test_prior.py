import math
from types import SimpleNamespace

import pytest
import torch

from aime.models.prior import DPGMMPrior, kl_kumaraswamy_beta, sample_log_kumaraswamy, stick_breaking


def make_prior(**overrides) -> DPGMMPrior:
    kwargs = dict(
        in_dim=6,
        hidden_dim=16,
        latent_dim=3,
        components=5,
        min_std=0.1,
        alpha_prior_shape=1.0,
        alpha_prior_rate=1.0,
        series_terms=10,
        mc_samples=4,
    )
    return DPGMMPrior(**(kwargs | overrides))


def test_mixture_weights_sum_to_one_and_shapes():
    torch.manual_seed(0)
    prior = make_prior()
    stats = prior(torch.randn(2, 7, 6))
    assert stats.log_pi.shape == (2, 7, 5) and stats.means.shape == stats.stds.shape == (2, 7, 5, 3)
    assert stats.kuma_a.shape == (2, 7, 4) and stats.alpha.shape == (2, 7)
    torch.testing.assert_close(stats.log_pi.exp().sum(-1), torch.ones(2, 7), atol=1e-5, rtol=0)


def test_stick_breaking_is_stable_at_the_edges():
    log_v, log_1mv = sample_log_kumaraswamy(torch.full((1000, 9), 0.1), torch.full((1000, 9), 100.0))
    assert bool(torch.isfinite(log_v).all() and torch.isfinite(log_1mv).all())
    log_pi = stick_breaking(log_v, log_1mv)
    torch.testing.assert_close(log_pi.exp().sum(-1), torch.ones(1000), atol=1e-5, rtol=0)


@pytest.mark.parametrize("a,b,beta", [(1.0, 1.0, 1.1), (2.0, 3.0, 0.3), (0.5, 0.5, 0.5), (1.0, 1.0, 5.0)])
def test_kumaraswamy_beta_kl_matches_monte_carlo(a, b, beta):
    torch.manual_seed(0)
    A, B, Be = (torch.tensor(x, dtype=torch.float64) for x in (a, b, beta))
    closed = kl_kumaraswamy_beta(A, B, Be, terms=10)
    q, p = (
        torch.distributions.Kumaraswamy(A, B),
        torch.distributions.Beta(torch.ones((), dtype=torch.float64), Be),
    )
    v = q.sample((200_000,)).clamp(1e-12, 1 - 1e-12)
    mc = (q.log_prob(v) - p.log_prob(v)).mean()
    assert float(closed) >= 0.0
    assert abs(float(closed) - float(mc)) < 0.05 + 0.05 * float(mc), (a, b, beta, float(closed), float(mc))


def test_kl_terms_are_finite_and_nonnegative_where_closed_form():
    torch.manual_seed(0)
    prior = make_prior()
    stats = prior(torch.randn(64, 6) * 3)
    q_mean, q_std = torch.randn(64, 3), torch.rand(64, 3) + 0.1
    kl_z = prior.kl_z(q_mean, q_std, stats)
    assert kl_z.shape == (64,) and bool(torch.isfinite(kl_z).all())
    assert bool((prior.kl_sticks(stats) >= 0).all()) and bool((prior.kl_alpha(stats) >= 0).all())


def test_kl_z_is_zero_for_a_posterior_equal_to_a_single_component():
    """With one component of weight ~1 and q equal to it, the MC KL must be ~0 (entropy counted once)."""
    torch.manual_seed(0)
    prior = make_prior(mc_samples=256)
    stats = prior(torch.randn(8, 6))
    stats.log_pi = torch.log(torch.tensor([1 - 4e-6, 1e-6, 1e-6, 1e-6, 1e-6])).expand(8, 5)
    kl = prior.kl_z(stats.means[:, 0], stats.stds[:, 0], stats)
    assert float(kl.detach().abs().max()) < 0.5, kl


def test_sampling_with_temperature():
    torch.manual_seed(0)
    prior = make_prior()
    stats = prior(torch.randn(4, 6))
    z0 = prior.sample(stats, temperature=0.0)
    best = stats.log_pi.argmax(-1)
    torch.testing.assert_close(z0, stats.means[torch.arange(4), best])
    assert prior.sample(stats, temperature=1.0).shape == (4, 3)


def test_effective_components_range():
    uniform = torch.full((5,), math.log(1 / 5))
    one_hot = torch.log(torch.tensor([1.0, 1e-12, 1e-12, 1e-12, 1e-12]))
    assert abs(float(DPGMMPrior.effective_components(_stats(uniform))) - 5.0) < 1e-4
    assert abs(float(DPGMMPrior.effective_components(_stats(one_hot))) - 1.0) < 1e-4


def _stats(log_pi: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(log_pi=log_pi)
