"""Small building blocks shared by the pillars: MLPs, diagonal Gaussians, injected collectives."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# A collective injected into model math, e.g. ``all_reduce`` averaging over data-parallel ranks.
# The model never imports torch.distributed; the trainer passes the real one.
Reduce = Callable[[Tensor], Tensor]


def identity_reduce(x: Tensor) -> Tensor:
    """Single-process default for every injected collective."""
    return x


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then each submodule's own previous mode: a frozen component stays
    in eval even when ``model`` is a part that does not know it is frozen (``nn.Module.train`` would
    set every child to the parent's mode)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def mlp(in_dim: int, hidden_dim: int, out_dim: int, *, layers: int = 2, norm: bool = True) -> nn.Sequential:
    """Linear-(LayerNorm)-SiLU hidden layers, then a bare linear head (no norm on the output)."""
    modules: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        modules += [
            nn.Linear(dim, hidden_dim),
            nn.LayerNorm(hidden_dim) if norm else nn.Identity(),
            nn.SiLU(),
        ]
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*modules)


def std_from(raw: Tensor, min_std: float) -> Tensor:
    """Positive std with a floor; softplus keeps gradients alive for large negative raw values."""
    return F.softplus(raw) + min_std


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise log N(x; mean, std^2)."""
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)


def gaussian_entropy(std: Tensor) -> Tensor:
    """Entropy of a diagonal Gaussian, summed over the last dim."""
    return (std.log() + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


def kl_standard_normal(mean: Tensor, std: Tensor) -> Tensor:
    """KL(N(mean, std) || N(0, 1)) summed over the last dim."""
    return 0.5 * (mean**2 + std**2 - 1.0 - 2.0 * std.log()).sum(-1)


def shift_right(x: Tensor, reset: Tensor) -> Tensor:
    """x[:, t-1] at t, zero at t=0 and where ``reset`` (is_first) is set.  x: (B, T, ...)."""
    prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
    mask = reset.reshape(*reset.shape, *([1] * (x.dim() - 2)))
    return prev.masked_fill(mask, 0.0)


def episode_resets(is_first: Tensor) -> Tensor:
    """is_first with t=0 forced on: a window has no history before its first step.  (B, T) bool."""
    reset = is_first.clone()
    reset[:, 0] = True
    return reset


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
