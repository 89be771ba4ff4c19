"""Pixel likelihoods p(o_t | z_t, h_{t-1}): a discretised mixture of logistics, or a fixed-std Gaussian.

Pixels live in [-1, 1] with 256 levels (bin width 2/255). Colour channels are independent given the
decoder's features (the decoder already sees all channels), which keeps the head a single conv.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from aime.models import noise

HALF_BIN = 1.0 / 255.0


class LogisticMixture:
    """Per-channel mixture of K discretised logistics; params (N, 3 * 3 * K, H, W)."""

    def __init__(self, *, components: int):
        self.components = components
        self.param_channels = 3 * 3 * components

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p = rearrange(params, "n (c three k) h w -> three n c k h w", c=3, three=3, k=self.components)
        return p[0], p[1], p[2].clamp(min=-7.0)  # logits, means, log_scales: (N, 3, K, H, W)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x) summed over pixels.  params (N, P, H, W), x (N, 3, H, W) in [-1, 1] -> (N,)."""
        logits, means, log_scales = self._split(params)
        x = x.unsqueeze(2)  # (N, 3, 1, H, W)
        inv_scale = torch.exp(-log_scales)
        upper = inv_scale * (x - means + HALF_BIN)
        lower = inv_scale * (x - means - HALF_BIN)
        # log(sigmoid(u) - sigmoid(l)) = log sigmoid(u) + log sigmoid(-l) + log(1 - exp(l - u)): stable
        # for every u > l, with no branch on the size of the bin mass.
        inner = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper))
        edge_low = F.logsigmoid(upper)  # x = -1 takes the whole left tail
        edge_high = F.logsigmoid(-lower)  # x = +1 takes the whole right tail
        log_bin = torch.where(x < -1 + HALF_BIN, edge_low, torch.where(x > 1 - HALF_BIN, edge_high, inner))
        log_mix = torch.logsumexp(F.log_softmax(logits, dim=2) + log_bin, dim=2)  # (N, 3, H, W)
        return log_mix.flatten(1).sum(-1)

    def shift(self, params: Tensor, base: Tensor) -> Tensor:
        """Params whose component means are moved by ``base`` (N, 3, H, W): residual decoding."""
        p = rearrange(params, "n (c three k) h w -> n c three k h w", c=3, three=3, k=self.components)
        means = p[:, :, 1] + base.unsqueeze(2)  # (N, 3, K, H, W)
        p = torch.stack([p[:, :, 0], means, p[:, :, 2]], dim=2)
        return rearrange(p, "n c three k h w -> n (c three k) h w")

    def mean(self, params: Tensor) -> Tensor:
        logits, means, _ = self._split(params)
        return (F.softmax(logits, dim=2) * means).sum(2).clamp(-1.0, 1.0)  # (N, 3, H, W)

    def sample(self, params: Tensor) -> Tensor:
        logits, means, log_scales = self._split(params)
        pick = F.one_hot(
            (logits - torch.log(-torch.log(noise.rand_like(logits).clamp_min(1e-9)))).argmax(2),
            self.components,
        )
        pick = rearrange(pick, "n c h w k -> n c k h w").to(means.dtype)
        mu, log_s = (pick * means).sum(2), (pick * log_scales).sum(2)
        u = noise.rand_like(mu).clamp(1e-5, 1 - 1e-5)
        return (mu + log_s.exp() * (u.log() - torch.log1p(-u))).clamp(-1.0, 1.0)


class FixedGaussian:
    """N(mean, std^2) per sub-pixel with a fixed std; params (N, 3, H, W) are the means."""

    def __init__(self, *, std: float):
        self.std = std
        self.param_channels = 3

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        z = (x - params) / self.std
        log_p = -0.5 * z**2 - math.log(self.std) - 0.5 * math.log(2 * math.pi)
        return log_p.flatten(1).sum(-1)

    def shift(self, params: Tensor, base: Tensor) -> Tensor:
        """Params whose means are moved by ``base`` (N, 3, H, W): residual decoding."""
        return params + base

    def mean(self, params: Tensor) -> Tensor:
        return params.clamp(-1.0, 1.0)

    def sample(self, params: Tensor) -> Tensor:
        return (params + self.std * noise.randn_like(params)).clamp(-1.0, 1.0)


PixelLikelihood = LogisticMixture | FixedGaussian


def make_likelihood(kind: str, *, components: int, std: float) -> PixelLikelihood:
    if kind == "logistic_mixture":
        return LogisticMixture(components=components)
    if kind == "gaussian":
        return FixedGaussian(std=std)
    raise ValueError(f"unknown pixel likelihood {kind!r}; expected 'logistic_mixture' or 'gaussian'")
