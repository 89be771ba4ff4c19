"""Temporal discriminator over (frames, z): patch tokens, then alternating spatial and temporal attention.

Conditioning on z makes it judge whether a frame is a plausible rendering of that latent, not only
whether it looks like the data. Intermediate token maps are returned for feature matching.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from aime.models.perception.transformer import SelfAttentionBlock


class TemporalDiscriminator(nn.Module):
    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        latent_dim: int,
        model_dim: int,
        heads: int,
        layers: int,
        max_frames: int,
    ):
        super().__init__()
        self.p = patch_size
        patches = (image_size // patch_size) ** 2
        self.patch = nn.Linear(3 * patch_size**2, model_dim)
        self.spatial_pos = nn.Parameter(torch.randn(patches, model_dim) * 0.02)
        self.temporal_pos = nn.Parameter(torch.randn(max_frames, model_dim) * 0.02)
        self.cond = nn.Linear(latent_dim, model_dim)
        self.spatial = nn.ModuleList(SelfAttentionBlock(dim=model_dim, heads=heads) for _ in range(layers))
        self.temporal = nn.ModuleList(SelfAttentionBlock(dim=model_dim, heads=heads) for _ in range(layers))
        self.norm = nn.LayerNorm(model_dim)
        self.head = nn.Linear(model_dim, 1)

    def forward(self, frames: Tensor, z: Tensor) -> tuple[Tensor, list[Tensor]]:
        """frames (B, T, 3, H, W) in [-1, 1], z (B, T, Z) -> (logits (B, T), features [(B, T, P, d)])."""
        B, T = frames.shape[:2]
        x = rearrange(frames, "b t c (h p1) (w p2) -> b t (h w) (p1 p2 c)", p1=self.p, p2=self.p)
        x = self.patch(x) + self.spatial_pos + self.temporal_pos[:T, None] + self.cond(z)[:, :, None]
        features = []
        for spatial, temporal in zip(self.spatial, self.temporal, strict=True):
            x, _ = spatial(rearrange(x, "b t n d -> (b t) n d"))
            x = rearrange(x, "(b t) n d -> (b n) t d", b=B)
            x, _ = temporal(x)
            x = rearrange(x, "(b n) t d -> b t n d", b=B)
            features.append(x)
        return self.head(self.norm(x).mean(2)).squeeze(-1), features
