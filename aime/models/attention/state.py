"""Attention state A_t: a reparameterised Gaussian summary of the fused map that feeds the LSTM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models import noise
from aime.models.attention.maps import centroid, spread
from aime.models.common import mlp, std_from

_POOLED = 8  # the map is summarised at 8x8: where attention is, not its fine shape


class AttentionState(nn.Module):
    def __init__(self, *, map_size: int, hidden_dim: int, state_dim: int):
        super().__init__()
        self.M = map_size
        self.pooled = min(_POOLED, map_size)
        self.net = mlp(self.pooled**2 + 4, hidden_dim, 2 * state_dim)

    def forward(self, fused: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
        """fused (..., N) -> (sample, mean, std), each (..., state_dim)."""
        lead = fused.shape[:-1]
        grid = rearrange(fused.reshape(-1, fused.shape[-1]), "n (h w) -> n 1 h w", h=self.M)
        pooled = F.adaptive_avg_pool2d(grid, self.pooled).flatten(1) * self.pooled**2  # O(1) values
        summary = torch.cat([pooled.reshape(*lead, -1), centroid(fused, self.M), spread(fused, self.M)], -1)
        mean, raw = self.net(summary).chunk(2, dim=-1)
        std = std_from(raw, 0.01)
        return mean + temperature * std * noise.randn_like(std), mean, std
