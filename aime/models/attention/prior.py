"""Attention prior: the next step's slot maps from the previous slot maps and [h_{t-1}, z_{t-1}].

A small conv net reads the previous maps as K image channels, modulated (FiLM) by the state, and
predicts logits per slot over locations plus each slot's saliency; fusion matches the posterior's,
so KL(posterior map || prior map) compares like with like. In imagination the predicted slot maps
feed the next step, since there is no frame to attend to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models.attention.maps import fuse
from aime.models.common import mlp


class AttentionPrior(nn.Module):
    def __init__(self, *, slots: int, map_size: int, cond_dim: int, hidden_dim: int):
        super().__init__()
        self.K, self.M = slots, map_size
        width = max(16, hidden_dim // 4)
        self.inp = nn.Conv2d(slots, width, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, slots, 3, padding=1)
        )
        self.saliency = mlp(cond_dim + slots, hidden_dim, slots, norm=False)

    def forward(self, prev_slot_maps: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """prev_slot_maps (B, T, K, N), cond (B, T, Dc) -> (slot_maps (B, T, K, N), fused (B, T, N))."""
        B, T = cond.shape[:2]
        N = self.M * self.M
        # Scaled by N so a uniform map is all ones, not 1/N, whatever the resolution.
        x = rearrange(prev_slot_maps * N, "b t k (h w) -> (b t) k h w", h=self.M)
        scale, shift = rearrange(self.film(cond), "b t (two c) -> two (b t) c 1 1", two=2)
        x = self.inp(x) * (1 + scale) + shift
        logits = rearrange(self.body(x), "(b t) k h w -> b t k (h w)", b=B, t=T)
        slot_maps = F.softmax(logits, dim=-1)
        peak = prev_slot_maps.amax(-1) * N  # (B, T, K): 1 for a uniform slot, large for a focused one
        saliency = self.saliency(torch.cat([cond, peak], dim=-1))
        return slot_maps, fuse(slot_maps, saliency)
