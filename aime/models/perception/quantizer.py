"""Vector quantiser: EMA codebook updates, commitment loss, straight-through gradients, dead-code reset.

The codebook is a buffer moved by exponential moving averages of assignment counts and sums (van den
Oord et al. 2017, appendix), so no codebook loss is needed. Under data parallelism the counts, sums
and re-seeding candidates go through the injected ``reduce`` (mean over ranks) so every rank keeps
the same codebook; the default is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aime.models.common import Reduce, identity_reduce


@dataclass
class QuantizerOutput:
    quantized: Tensor  # (N, D) straight-through: forward = code, backward = identity to the input
    ids: Tensor  # (N,) long
    commitment: Tensor  # scalar
    perplexity: Tensor  # scalar, exp(entropy of code usage in this batch)


class VectorQuantizer(nn.Module):
    codebook: Tensor  # (K, D) buffers, moved by EMA, not by the optimizer
    usage: Tensor  # (K,) EMA of assignments per step
    code_sum: Tensor  # (K, D) EMA of the sum of assigned vectors

    def __init__(
        self,
        *,
        codebook_size: int,
        dim: int,
        decay: float,
        commitment: float,
        dead_threshold: float,
        reduce: Reduce = identity_reduce,
    ):
        super().__init__()
        self.K, self.decay, self.beta, self.dead_threshold = codebook_size, decay, commitment, dead_threshold
        self.reduce = reduce
        self.register_buffer("codebook", torch.randn(codebook_size, dim))
        # Zero usage marks every code dead, so the first training batch seeds the codebook from data.
        self.register_buffer("usage", torch.zeros(codebook_size))
        self.register_buffer("code_sum", torch.zeros(codebook_size, dim))

    def forward(self, x: Tensor) -> QuantizerOutput:
        """x (N, D) -> QuantizerOutput; the codebook moves only in training mode with grad enabled."""
        x32 = x.float()  # distances in bf16 pick wrong codes
        if self.training and torch.is_grad_enabled():
            self._seed_dead_codes(x32.detach())
        dist = (x32**2).sum(1, keepdim=True) - 2 * x32 @ self.codebook.T + (self.codebook**2).sum(1)
        ids = dist.argmin(1)
        codes = self.codebook[ids]
        # index_add_ of ones, not bincount: bincount reads max(ids) back to the host (a GPU sync).
        counts = torch.zeros(self.K, dtype=x32.dtype, device=x32.device).index_add_(
            0, ids, torch.ones_like(ids, dtype=x32.dtype)
        )
        if self.training and torch.is_grad_enabled():
            self._ema_update(x32.detach(), ids, counts)
        probs = self.reduce(counts) / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(probs * probs.clamp_min(1e-12).log()).sum())
        commitment = self.beta * F.mse_loss(x32, codes.detach())
        quantized = x + (codes.to(x.dtype) - x).detach()
        return QuantizerOutput(quantized=quantized, ids=ids, commitment=commitment, perplexity=perplexity)

    @torch.no_grad()
    def _ema_update(self, x: Tensor, ids: Tensor, counts: Tensor) -> None:
        sums = torch.zeros_like(self.code_sum).index_add_(0, ids, x)
        self.usage.mul_(self.decay).add_(self.reduce(counts), alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(self.reduce(sums), alpha=1 - self.decay)
        live = (self.usage > 0).unsqueeze(1)  # a masked write would sync; where() does not
        self.codebook.copy_(
            torch.where(live, self.code_sum / self.usage.clamp_min(1e-12).unsqueeze(1), self.codebook)
        )

    @torch.no_grad()
    def _seed_dead_codes(self, x: Tensor) -> None:
        """Codes used less than ``dead_threshold`` times per step (EMA) restart at a batch vector."""
        dead = self.usage < self.dead_threshold  # (K,)
        picks = torch.randint(0, x.shape[0], (self.K,), device=x.device)
        candidates = self.reduce(x[picks])  # ranks agree on the replacement
        # A fresh code gets a few steps' grace before it can be declared dead again.
        grace = 2.0 * max(self.dead_threshold, 1e-3)
        self.codebook.copy_(torch.where(dead[:, None], candidates, self.codebook))
        self.code_sum.copy_(torch.where(dead[:, None], candidates * grace, self.code_sum))
        self.usage.copy_(torch.where(dead, torch.full_like(self.usage, grace), self.usage))
