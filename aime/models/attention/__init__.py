"""Attention schema: where the model looks (posterior), where it expects to look (prior), and A_t."""

from aime.models.attention.maps import centroid, fuse, kl_maps, movement, slot_diversity, uniform_slot_maps
from aime.models.attention.posterior import FeaturePyramid, SlotAttentionPosterior, SlotOutput
from aime.models.attention.prior import AttentionPrior
from aime.models.attention.state import AttentionState

__all__ = [
    "AttentionPrior",
    "AttentionState",
    "FeaturePyramid",
    "SlotAttentionPosterior",
    "SlotOutput",
    "centroid",
    "fuse",
    "kl_maps",
    "movement",
    "slot_diversity",
    "uniform_slot_maps",
]
