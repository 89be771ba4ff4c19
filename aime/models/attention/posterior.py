"""Attention posterior: slot attention over a small feature pyramid, steered top-down by [h_{t-1}, c_t].

Slots compete for locations (softmax over slots), are refined for a few rounds with a GRU, and each
slot's attention, renormalised over space, is its map. Slot initialisation and each slot's saliency
are functions of the top-down input, which is how the recurrent state decides where to look.
Reference: Locatello et al., "Object-Centric Learning with Slot Attention" (NeurIPS 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models.attention.maps import fuse
from aime.models.common import mlp


class FeaturePyramid(nn.Module):
    """Frames -> features at the map resolution plus an upsampled coarser level, with learned positions."""

    def __init__(self, *, image_size: int, map_size: int, feature_dim: int):
        super().__init__()
        downs = int(math.log2(image_size // map_size))
        layers: list[nn.Module] = []
        for i in range(downs):
            layers += [
                nn.Conv2d(3 if i == 0 else feature_dim, feature_dim, 3, stride=2, padding=1),
                nn.SiLU(),
            ]
        self.fine = nn.Sequential(*layers)
        self.coarse = nn.Sequential(nn.Conv2d(feature_dim, feature_dim, 3, stride=2, padding=1), nn.SiLU())
        self.merge = nn.Conv2d(2 * feature_dim, feature_dim, 1)
        self.position = nn.Parameter(torch.randn(feature_dim, map_size, map_size) * 0.02)

    def forward(self, frames: Tensor) -> Tensor:
        B, T = frames.shape[:2]
        fine = self.fine(rearrange(frames, "b t c h w -> (b t) c h w"))  # (B*T, F, M, M)
        coarse = F.interpolate(self.coarse(fine), size=fine.shape[-2:], mode="nearest")
        x = self.merge(torch.cat([fine, coarse], dim=1)) + self.position
        return rearrange(x, "(b t) f h w -> b t (h w) f", b=B, t=T)  # (B, T, N, F)


@dataclass
class SlotOutput:
    slot_maps: Tensor  # (B, K, N) each slot's distribution over locations
    fused: Tensor  # (B, N)
    slots: Tensor  # (B, K, D)


class SlotAttentionPosterior(nn.Module):
    def __init__(
        self, *, feature_dim: int, slot_dim: int, slots: int, iterations: int, cond_dim: int, hidden_dim: int
    ):
        super().__init__()
        self.K, self.D, self.iterations = slots, slot_dim, iterations
        self.slot_embed = nn.Parameter(torch.randn(slots, slot_dim) * 0.1)
        self.top_down = nn.Linear(cond_dim, slots * slot_dim)
        self.norm_features = nn.LayerNorm(feature_dim)
        self.to_k = nn.Linear(feature_dim, slot_dim, bias=False)
        self.to_v = nn.Linear(feature_dim, slot_dim, bias=False)
        self.norm_slots = nn.LayerNorm(slot_dim)
        self.to_q = nn.Linear(slot_dim, slot_dim, bias=False)
        self.gru = nn.GRUCell(slot_dim, slot_dim)
        self.refine = nn.Sequential(nn.LayerNorm(slot_dim), mlp(slot_dim, hidden_dim, slot_dim, norm=False))
        self.saliency = mlp(slot_dim + cond_dim, hidden_dim, 1, norm=False)

    def forward(self, features: Tensor, cond: Tensor) -> SlotOutput:
        """features (B, N, F), cond (B, Dc) = [h_{t-1}, c_t]."""
        return self.attend(*self.keys_values(features), cond)

    def keys_values(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """features (..., N, F) -> keys, values (..., N, D). They depend on the frame only, so the
        rollout computes them for the whole sequence at once, outside its per-frame loop."""
        f = self.norm_features(features)
        return self.to_k(f), self.to_v(f)

    def attend(self, k: Tensor, v: Tensor, cond: Tensor) -> SlotOutput:
        """keys, values (B, N, D) of one frame, cond (B, Dc) = [h_{t-1}, c_t]."""
        B = k.shape[0]
        slots = self.slot_embed + rearrange(self.top_down(cond), "b (k d) -> b k d", k=self.K)
        for _ in range(self.iterations):
            q = self.to_q(self.norm_slots(slots)) * self.D**-0.5
            attn = F.softmax(q @ k.transpose(1, 2), dim=1) + 1e-8  # (B, K, N): slots compete per location
            maps = attn / attn.sum(-1, keepdim=True)
            updates = maps @ v  # (B, K, D)
            slots = self.gru(updates.reshape(-1, self.D), slots.reshape(-1, self.D)).view(B, self.K, self.D)
            slots = slots + self.refine(slots)
        saliency = self.saliency(torch.cat([slots, cond.unsqueeze(1).expand(-1, self.K, -1)], -1)).squeeze(-1)
        return SlotOutput(slot_maps=maps, fused=fuse(maps, saliency), slots=slots)
