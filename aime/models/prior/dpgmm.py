"""DPGMM prior p(z_t | h_{t-1}, c_{t-1}, a_{t-1}): a truncated stick-breaking Gaussian mixture.

Every parameter (stick fractions, component means and stds, the concentration's Gamma posterior) is
a head on one trunk over [h_{t-1}, c_{t-1}, a_{t-1}]. The heads are bare linears: a LayerNorm on them
would pin the scale of the means and the mixture logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models import noise
from aime.models.common import gaussian_entropy, gaussian_log_prob, mlp, std_from
from aime.models.prior.sticks import (
    effective_components,
    kl_gamma,
    kl_kumaraswamy_beta,
    sample_log_kumaraswamy,
    stick_breaking,
)


@dataclass
class PriorStats:
    log_pi: Tensor  # (..., K) mixture weights from one stick sample
    means: Tensor  # (..., K, Z)
    stds: Tensor  # (..., K, Z)
    kuma_a: Tensor  # (..., K-1)
    kuma_b: Tensor  # (..., K-1)
    gamma_shape: Tensor  # (...) q(alpha)
    gamma_rate: Tensor  # (...)
    alpha: Tensor  # (...) one reparameterised sample of the concentration

    def detach(self) -> PriorStats:
        return PriorStats(**{k: v.detach() for k, v in vars(self).items()})

    def float(self) -> PriorStats:
        """fp32 copies: lgamma, digamma and logsumexp over components lose too much in bf16."""
        return PriorStats(**{k: v.float() for k, v in vars(self).items()})


class DPGMMPrior(nn.Module):
    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int,
        latent_dim: int,
        components: int,
        min_std: float,
        alpha_prior_shape: float,
        alpha_prior_rate: float,
        series_terms: int,
        mc_samples: int,
    ):
        super().__init__()
        self.K, self.Z = components, latent_dim
        self.min_std, self.series_terms, self.mc_samples = min_std, series_terms, mc_samples
        self.alpha_prior = (alpha_prior_shape, alpha_prior_rate)
        self.trunk = nn.Sequential(mlp(in_dim, hidden_dim, hidden_dim), nn.SiLU())
        self.sticks = nn.Linear(hidden_dim, 2 * (components - 1))
        self.components = nn.Linear(hidden_dim, 2 * components * latent_dim)
        self.concentration = nn.Linear(hidden_dim, 2)

    def forward(self, x: Tensor) -> PriorStats:
        """x (..., in_dim) = [h_{t-1}, c_{t-1}, a_{t-1}] -> PriorStats with one sample of sticks and alpha."""
        f = self.trunk(x)
        # a, b in [0.1, 100]: the range where the KL series (with its tail estimate) stays accurate.
        a, b = (F.softplus(self.sticks(f)) + 0.1).clamp(max=100.0).chunk(2, dim=-1)
        means, raw_std = rearrange(self.components(f), "... (two k z) -> two ... k z", two=2, k=self.K)
        shape, rate = (F.softplus(self.concentration(f)) + 1e-3).unbind(-1)
        # Gamma sampling in fp32: under bf16 autocast the CPU kernel does not exist and bf16 loses the
        # small concentrations that matter here.
        alpha = torch.distributions.Gamma(shape.float(), rate.float()).rsample().clamp(min=1e-3)
        log_pi = stick_breaking(*sample_log_kumaraswamy(a, b))
        return PriorStats(
            log_pi=log_pi,
            means=means,
            stds=std_from(raw_std, self.min_std),
            kuma_a=a,
            kuma_b=b,
            gamma_shape=shape,
            gamma_rate=rate,
            alpha=alpha,
        )

    def log_prob(self, z: Tensor, stats: PriorStats) -> Tensor:
        """log sum_k pi_k N(z; mu_k, sigma_k): z (S, ..., Z) -> (S, ...)."""
        comp = gaussian_log_prob(z.unsqueeze(-2), stats.means, stats.stds).sum(-1)  # (S, ..., K)
        return torch.logsumexp(stats.log_pi + comp, dim=-1)

    def kl_z(self, q_mean: Tensor, q_std: Tensor, stats: PriorStats) -> Tensor:
        """KL(q(z_t) || mixture) by Monte Carlo: -H[q] (closed form, counted once) - E_q log p(z).  (...)."""
        eps = torch.randn((self.mc_samples, *q_mean.shape), dtype=q_mean.dtype, device=q_mean.device)
        z = q_mean + q_std * eps  # (S, ..., Z)
        return -gaussian_entropy(q_std) - self.log_prob(z, stats).mean(0)

    def kl_sticks(self, stats: PriorStats) -> Tensor:
        """sum_k KL(Kumaraswamy(a_k, b_k) || Beta(1, alpha)), alpha from its posterior sample.  (...)."""
        kl = kl_kumaraswamy_beta(
            stats.kuma_a, stats.kuma_b, stats.alpha.unsqueeze(-1), terms=self.series_terms
        )
        return kl.sum(-1)

    def kl_alpha(self, stats: PriorStats) -> Tensor:
        return kl_gamma(stats.gamma_shape, stats.gamma_rate, *self.alpha_prior)

    @staticmethod
    def effective_components(stats: PriorStats) -> Tensor:
        return effective_components(stats.log_pi)

    @staticmethod
    def sample(stats: PriorStats, temperature: float = 1.0) -> Tensor:
        """Sample a component, then z from it; temperature 0: the heaviest component's mean.  (..., Z)."""
        if temperature <= 0.0:
            k = stats.log_pi.argmax(-1)
            eps = torch.zeros_like(stats.means[..., 0, :])
        else:
            gumbel = -torch.log(-torch.log(noise.rand_like(stats.log_pi).clamp(1e-9, 1 - 1e-9)))
            k = (stats.log_pi / temperature + gumbel).argmax(-1)
            eps = temperature * noise.randn_like(stats.means[..., 0, :])
        index = k[..., None, None].expand(*k.shape, 1, stats.means.shape[-1])
        mean = stats.means.gather(-2, index).squeeze(-2)
        std = stats.stds.gather(-2, index).squeeze(-2)
        return mean + std * eps
