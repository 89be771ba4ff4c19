"""Convolutional blocks of the encoder and decoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if channels % g == 0), channels)


def conv_factory(spectral: bool) -> Callable[..., nn.Module]:
    def make(*args: Any, **kwargs: Any) -> nn.Module:
        conv = nn.Conv2d(*args, **kwargs)
        return spectral_norm(conv) if spectral else conv

    return make


class GatedResidualBlock(nn.Module):
    """x + a * sigmoid(b): the gate lets a block start close to identity and open as it learns."""

    def __init__(self, *, channels: int, spectral: bool):
        super().__init__()
        conv = conv_factory(spectral)
        self.norm1 = _group_norm(channels)
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.norm2 = _group_norm(channels)
        self.conv2 = conv(channels, 2 * channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(torch.nn.functional.silu(self.norm1(x)))
        a, b = self.conv2(torch.nn.functional.silu(self.norm2(y))).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)
