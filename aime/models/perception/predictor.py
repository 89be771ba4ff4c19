"""Token predictor: the next frame's tokens, autoregressively in raster order, given [c_t, a_t].

c_t summarises frames <= t and a_t is the action taken after frame t, together the information the
next frame depends on. Training is teacher-forced (one causal pass); generation decodes token by
token with a KV cache so each step costs one token's attention over the cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aime.models.perception.transformer import KV, SelfAttentionBlock


class TokenPredictor(nn.Module):
    def __init__(
        self,
        *,
        codebook_size: int,
        tokens_per_frame: int,
        model_dim: int,
        heads: int,
        layers: int,
        cond_dim: int,
    ):
        super().__init__()
        self.L = tokens_per_frame
        self.prefix = nn.Linear(cond_dim, model_dim)
        self.embed = nn.Embedding(codebook_size, model_dim)
        self.position = nn.Parameter(torch.randn(tokens_per_frame, model_dim) * 0.02)
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim=model_dim, heads=heads) for _ in range(layers))
        self.norm = nn.LayerNorm(model_dim)
        self.head = nn.Linear(model_dim, codebook_size)

    def forward(self, cond: Tensor, targets: Tensor) -> Tensor:
        """cond (N, Dc), targets (N, L) long -> logits (N, L, V); position i predicts targets[:, i]."""
        x = torch.cat([self.prefix(cond).unsqueeze(1), self.embed(targets[:, :-1])], dim=1) + self.position
        for block in self.blocks:
            x, _ = block(x, causal=True)
        return self.head(self.norm(x))

    @torch.no_grad()
    def generate(self, cond: Tensor, *, temperature: float = 0.0) -> Tensor:
        """cond (N, Dc) -> ids (N, L); temperature 0 is greedy, else sampling from softmax(logits / T)."""
        x = (self.prefix(cond) + self.position[0]).unsqueeze(1)  # (N, 1, d)
        caches: list[KV | None] = [None] * len(self.blocks)
        ids = []
        for i in range(self.L):
            for j, block in enumerate(self.blocks):
                x, caches[j] = block(x, cache=caches[j])
            logits = self.head(self.norm(x[:, -1]))  # (N, V)
            if temperature <= 0.0:
                token = logits.argmax(-1)
            else:
                token = torch.multinomial(F.softmax(logits / temperature, dim=-1), 1).squeeze(-1)
            ids.append(token)
            if i + 1 < self.L:
                x = (self.embed(token) + self.position[i + 1]).unsqueeze(1)
        return torch.stack(ids, dim=1)
