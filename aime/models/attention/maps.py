"""Attention maps as spatial distributions, and the losses defined on them.

A slot map is a distribution over the N = M*M locations; the fused map is the saliency-weighted
mixture of the slot maps, so it is a distribution too and KL between maps is a categorical KL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-6


def fuse(slot_maps: Tensor, saliency_logits: Tensor) -> Tensor:
    """slot_maps (..., K, N), saliency_logits (..., K) -> fused map (..., N) summing to one."""
    return (F.softmax(saliency_logits, dim=-1).unsqueeze(-1) * slot_maps).sum(-2)


def uniform_slot_maps(batch: int, slots: int, locations: int, *, like: Tensor) -> Tensor:
    return torch.full((batch, slots, locations), 1.0 / locations, dtype=like.dtype, device=like.device)


def kl_maps(posterior: Tensor, prior: Tensor) -> Tensor:
    """KL(posterior || prior) over locations: (..., N) -> (...); >= 0 up to the EPS smoothing."""
    p = posterior.clamp_min(EPS)
    return (p * (p.log() - prior.clamp_min(EPS).log())).sum(-1)


def slot_diversity(slot_maps: Tensor) -> Tensor:
    """Mean cosine similarity between different slots' maps, (..., K, N) -> (...): 0 when disjoint."""
    unit = F.normalize(slot_maps, dim=-1)
    gram = unit @ unit.transpose(-1, -2)  # (..., K, K)
    K = slot_maps.shape[-2]
    off_diagonal = gram.sum((-1, -2)) - gram.diagonal(dim1=-2, dim2=-1).sum(-1)
    return off_diagonal / (K * (K - 1))


def centroid(fused: Tensor, map_size: int) -> Tensor:
    """Expected (y, x) location in [-1, 1] under the map: (..., N) -> (..., 2)."""
    axis = torch.linspace(-1.0, 1.0, map_size, dtype=fused.dtype, device=fused.device)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)  # (N, 2)
    return fused @ grid


def spread(fused: Tensor, map_size: int) -> Tensor:
    """Standard deviation of the location along y and x: (..., N) -> (..., 2)."""
    axis = torch.linspace(-1.0, 1.0, map_size, dtype=fused.dtype, device=fused.device)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    mean = fused @ grid
    return (fused @ grid**2 - mean**2).clamp_min(EPS).sqrt()


def movement(fused: Tensor, reset: Tensor, map_size: int) -> Tensor:
    """Squared centroid displacement from t-1 to t, zero where a new episode starts.  (B, T, N) -> (B, T)."""
    c = centroid(fused, map_size)  # (B, T, 2)
    step = torch.cat([torch.zeros_like(c[:, :1]), c[:, 1:] - c[:, :-1]], dim=1)
    return (step**2).sum(-1).masked_fill(reset, 0.0)
