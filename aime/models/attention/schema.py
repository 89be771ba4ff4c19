"""The attention pillar as one module: feature pyramid, slot posterior, map prior and state A_t."""

from __future__ import annotations

from torch import nn

from aime.models.attention.posterior import FeaturePyramid, SlotAttentionPosterior
from aime.models.attention.prior import AttentionPrior
from aime.models.attention.state import AttentionState
from aime.models.config import AttentionConfig


class AttentionSchema(nn.Module):
    def __init__(
        self, cfg: AttentionConfig, *, image_size: int, hidden_dim: int, context_dim: int, latent_dim: int
    ):
        super().__init__()
        self.map_size, self.slots = cfg.map_size, cfg.slots
        self.pyramid = FeaturePyramid(
            image_size=image_size, map_size=cfg.map_size, feature_dim=cfg.feature_dim
        )
        self.posterior = SlotAttentionPosterior(
            feature_dim=cfg.feature_dim,
            slot_dim=cfg.slot_dim,
            slots=cfg.slots,
            iterations=cfg.iterations,
            cond_dim=hidden_dim + context_dim,
            hidden_dim=cfg.hidden_dim,
        )
        self.prior = AttentionPrior(
            slots=cfg.slots,
            map_size=cfg.map_size,
            cond_dim=hidden_dim + latent_dim,
            hidden_dim=cfg.hidden_dim,
        )
        self.state = AttentionState(map_size=cfg.map_size, hidden_dim=cfg.hidden_dim, state_dim=cfg.state_dim)
