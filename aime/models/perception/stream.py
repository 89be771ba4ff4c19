"""The perception pillar as one module: tokenizer -> Perceiver bottleneck -> c_t, plus the token predictor."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models.common import Reduce, identity_reduce
from aime.models.config import PerceptionConfig
from aime.models.perception.bottleneck import PerceiverBottleneck
from aime.models.perception.predictor import TokenPredictor
from aime.models.perception.tokenizer import Tokenizer


@dataclass
class PerceptionOutput:
    context: Tensor  # (B, T, C) c_t
    ids: Tensor  # (B, T, h, w) token ids
    token_logits: Tensor  # (B, T-1, L, V): frame t+1's tokens from [c_t, a_t]
    token_mask: Tensor  # (B, T-1) bool: False where frame t+1 starts a new episode
    tokenizer_recon: Tensor  # (B, T, 3, H, W)
    commitment: Tensor  # scalar
    perplexity: Tensor  # scalar


class PerceptionStream(nn.Module):
    def __init__(
        self, cfg: PerceptionConfig, *, image_size: int, action_dim: int, reduce: Reduce = identity_reduce
    ):
        super().__init__()
        grid = image_size // 4
        self.tokenizer = Tokenizer(
            channels=cfg.tokenizer_channels,
            code_dim=cfg.code_dim,
            codebook_size=cfg.codebook_size,
            time_kernel=cfg.time_kernel,
            commitment=cfg.commitment,
            ema_decay=cfg.ema_decay,
            dead_threshold=cfg.dead_code_threshold,
            reduce=reduce,
        )
        self.bottleneck = PerceiverBottleneck(
            codebook_size=cfg.codebook_size,
            tokens_per_frame=grid * grid,
            model_dim=cfg.model_dim,
            heads=cfg.heads,
            queries=cfg.queries,
            layers=cfg.temporal_layers,
            context_dim=cfg.context_dim,
            max_frames=cfg.max_frames,
        )
        self.predictor = TokenPredictor(
            codebook_size=cfg.codebook_size,
            tokens_per_frame=grid * grid,
            model_dim=cfg.model_dim,
            heads=cfg.heads,
            layers=cfg.predictor_layers,
            cond_dim=cfg.context_dim + action_dim,
        )

    def context(self, frames: Tensor, reset: Tensor) -> Tensor:
        """c (B, T, C) alone, e.g. for imagination: frames (B, T, 3, H, W) in [-1, 1]."""
        return self.bottleneck(self.tokens(frames), reset)

    def tokens(self, frames: Tensor) -> Tensor:
        """Token ids (B, T, h, w) of frames (B, T, 3, H, W) in [-1, 1]; frame t's depend only on
        frames t - tokenizer.receptive_frames + 1 .. t."""
        return self.tokenizer.encode(frames)[1]

    def forward(self, frames: Tensor, action: Tensor, reset: Tensor) -> PerceptionOutput:
        B, T = frames.shape[:2]
        tok = self.tokenizer(frames)
        context = self.bottleneck(tok.ids, reset)
        cond = torch.cat([context[:, :-1], action[:, :-1]], dim=-1)  # (B, T-1, C+A)
        targets = rearrange(tok.ids[:, 1:], "b t h w -> (b t) (h w)")
        logits = self.predictor(rearrange(cond, "b t d -> (b t) d"), targets)
        return PerceptionOutput(
            context=context,
            ids=tok.ids,
            token_logits=rearrange(logits, "(b t) l v -> b t l v", b=B),
            token_mask=~reset[:, 1:],
            tokenizer_recon=tok.recon,
            commitment=tok.commitment,
            perplexity=tok.perplexity,
        )

    @staticmethod
    def token_cross_entropy(out: PerceptionOutput) -> Tensor:
        """Mean next-frame token cross-entropy (nats/token) over valid transitions; 0 if there are none."""
        if out.token_logits.shape[1] == 0:
            return out.token_logits.sum() * 0.0
        targets = out.ids[:, 1:].flatten(2)  # (B, T-1, L)
        ce = F.cross_entropy(out.token_logits.flatten(0, 2).float(), targets.flatten(), reduction="none")
        ce = ce.view(targets.shape).mean(-1)  # (B, T-1)
        mask = out.token_mask.to(ce.dtype)
        return (ce * mask).sum() / mask.sum().clamp_min(1.0)
