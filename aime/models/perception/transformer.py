"""Pre-norm transformer pieces shared by the bottleneck and the token predictor (and the discriminator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

KV = tuple[Tensor, Tensor]  # cached keys and values, each (B, heads, S, head_dim)


class MultiHeadAttention(nn.Module):
    def __init__(self, *, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KV | None = None,
    ) -> tuple[Tensor, KV]:
        """x (B, N, D), context (B, S, Dkv) or None (self-attention); mask (B|1, 1, N, S) True = attend.

        With ``cache`` the new keys/values are appended and every query sees all of them, which is
        exact for autoregressive decoding one token at a time.
        """
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(
            self.to_kv(x if context is None else context), "b s (two h d) -> two b h s d", two=2, h=self.heads
        )
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and cache is None)
        return self.out(rearrange(y, "b h n d -> b n (h d)")), (k, v)


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))


class SelfAttentionBlock(nn.Module):
    def __init__(self, *, dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim=dim, heads=heads)
        self.ff = feed_forward(dim)

    def forward(
        self, x: Tensor, *, mask: Tensor | None = None, causal: bool = False, cache: KV | None = None
    ) -> tuple[Tensor, KV]:
        y, kv = self.attn(self.norm(x), mask=mask, causal=causal, cache=cache)
        x = x + y
        return x + self.ff(x), kv


class CrossAttentionBlock(nn.Module):
    """Queries (B, Q, D) read from a context (B, S, Dkv)."""

    def __init__(self, *, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim or dim)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, kv_dim=kv_dim)
        self.ff = feed_forward(dim)

    def forward(self, queries: Tensor, context: Tensor) -> Tensor:
        y, _ = self.attn(self.norm_q(queries), self.norm_kv(context))
        x = queries + y
        return x + self.ff(x)


def episode_causal_mask(reset: Tensor) -> Tensor:
    """(B, T) is_first -> (B, 1, T, T) bool: step i sees step j iff j <= i within the same episode."""
    episode = torch.cumsum(reset.long(), dim=1)  # (B, T)
    T = reset.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=reset.device).tril()
    same = episode.unsqueeze(2) == episode.unsqueeze(1)  # (B, T, T)
    return (same & causal).unsqueeze(1)
