"""Stick-breaking with Kumaraswamy stick fractions, in log space, and the KL terms of the DP prior.

References: Nalisnick & Smyth, "Stick-Breaking Variational Autoencoders" (ICLR 2017) for the
Kumaraswamy reparameterisation and its closed-form KL to a Beta.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Gamma, kl_divergence

from aime.models import noise

EULER_GAMMA = 0.5772156649015329
_U_EPS = 1e-6


def sample_log_kumaraswamy(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Reparameterised v ~ Kumaraswamy(a, b); returns (log v, log(1 - v)), both (..., K-1).

    v = (1 - (1 - u)^(1/b))^(1/a); every step stays in log space so v near 0 or 1 never rounds to
    an exact 0 or 1 whose log would be infinite.
    """
    u = noise.rand_like(a).clamp(_U_EPS, 1 - _U_EPS)
    log_one_minus_w = torch.log1p(-u) / b  # log((1 - u)^(1/b)) < 0
    log_v = torch.log(-torch.expm1(log_one_minus_w)) / a
    log_v = log_v.clamp(max=-_U_EPS)
    return log_v, torch.log(-torch.expm1(log_v))


def stick_breaking(log_v: Tensor, log_one_minus_v: Tensor) -> Tensor:
    """log pi_k = log v_k + sum_{j<k} log(1 - v_j); the last component takes the remainder.

    (..., K-1) -> (..., K); exp(log pi) sums to one by construction.
    """
    remaining = torch.cumsum(log_one_minus_v, dim=-1)  # log prod_{j<=k} (1 - v_j)
    before = torch.cat([torch.zeros_like(remaining[..., :1]), remaining[..., :-1]], dim=-1)
    return torch.cat([log_v + before, remaining[..., -1:]], dim=-1)


def kl_kumaraswamy_beta(a: Tensor, b: Tensor, beta: Tensor, *, terms: int) -> Tensor:
    """KL(Kumaraswamy(a, b) || Beta(1, beta)) per stick, (..., K-1); ``beta`` broadcasts.

    The E[log(1 - v)] term is an infinite series in m; ``terms`` truncates it (10 is the usual
    choice). Truncation alone underestimates the series, which for beta > 1 made the KL negative
    (a = b = 1, beta = 1.1 gives -0.004 against the true +0.005), so the tail is estimated from the
    last term assuming its asymptotic m^-(1 + b) decay. For a, b in [0.1, 100] this keeps the KL >= 0
    with a median relative error of ~1% (against ~5% truncated).
    """
    m = torch.arange(1, terms + 1, dtype=a.dtype, device=a.device)  # (M,)
    a_, b_ = a.unsqueeze(-1), b.unsqueeze(-1)
    log_beta_fn = torch.lgamma(m / a_) + torch.lgamma(b_) - torch.lgamma(m / a_ + b_)  # log B(m/a, b)
    term = torch.exp(log_beta_fn) / (m + a_ * b_)  # (..., M)
    tail = term[..., -1] * terms ** (1.0 + b) * (terms + 0.5) ** (-b) / b
    series = term.sum(-1) + tail
    return (
        (a - 1.0) / a * (-EULER_GAMMA - torch.digamma(b) - 1.0 / b)
        + torch.log(a * b)
        - torch.log(beta)  # log B(1, beta)
        - (b - 1.0) / b
        + (beta - 1.0) * b * series
    )


def kl_gamma(shape: Tensor, rate: Tensor, prior_shape: float, prior_rate: float) -> Tensor:
    """KL(Gamma(shape, rate) || Gamma(prior_shape, prior_rate)), closed form, elementwise."""
    prior = Gamma(torch.full_like(shape, prior_shape), torch.full_like(rate, prior_rate))
    return kl_divergence(Gamma(shape, rate), prior)


def effective_components(log_pi: Tensor) -> Tensor:
    """exp(entropy of pi): 1 when one component holds all mass, K when all share it.  (...)."""
    return torch.exp(-(log_pi.exp() * log_pi).sum(-1))
