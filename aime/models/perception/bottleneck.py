"""Perceiver temporal bottleneck: each frame's tokens -> one vector -> causal attention over time -> c_t.

Per frame, learned latent queries cross-attend to that frame's token embeddings (which carry learned
spatial and temporal position embeddings), and are mean-pooled to one vector. A causal self-attention
stack over frames, masked at episode boundaries, turns those into c_t, which depends on frames <= t.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from aime.models.perception.transformer import CrossAttentionBlock, SelfAttentionBlock, episode_causal_mask


class PerceiverBottleneck(nn.Module):
    def __init__(
        self,
        *,
        codebook_size: int,
        tokens_per_frame: int,
        model_dim: int,
        heads: int,
        queries: int,
        layers: int,
        context_dim: int,
        max_frames: int,
    ):
        super().__init__()
        self.max_frames = max_frames
        self.embed = nn.Embedding(codebook_size, model_dim)
        self.spatial = nn.Parameter(torch.randn(tokens_per_frame, model_dim) * 0.02)
        self.temporal = nn.Parameter(torch.randn(max_frames, model_dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(queries, model_dim) * 0.02)
        self.read = CrossAttentionBlock(dim=model_dim, heads=heads)
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim=model_dim, heads=heads) for _ in range(layers))
        self.norm = nn.LayerNorm(model_dim)
        self.out = nn.Linear(model_dim, context_dim)

    def forward(self, ids: Tensor, reset: Tensor) -> Tensor:
        """ids (B, T, h, w) long, reset (B, T) bool -> c (B, T, context_dim)."""
        B, T = ids.shape[:2]
        if T > self.max_frames:
            raise ValueError(f"sequence of {T} frames exceeds perception.max_frames={self.max_frames}")
        time = self.temporal[:T]  # (T, d)
        x = self.embed(rearrange(ids, "b t h w -> b t (h w)")) + self.spatial + time[:, None]  # (B, T, L, d)
        x = rearrange(x, "b t l d -> (b t) l d")
        # repeat, not expand: under no_grad (imagined frames) an expanded view of a parameter is flagged
        # requires_grad without a graph, which hooks on module inputs (FLOP counting) cannot follow.
        latents = self.read(self.queries.repeat(x.shape[0], 1, 1), x)  # (B*T, Q, d)
        frames = rearrange(latents.mean(1), "(b t) d -> b t d", b=B) + time  # (B, T, d)
        mask = episode_causal_mask(reset)
        for block in self.blocks:
            frames, _ = block(frames, mask=mask)
        return self.out(self.norm(frames))  # (B, T, C)
