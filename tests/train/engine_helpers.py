"""Shared by the single-process engine tests: a micro-batch the tiny preset accepts."""

from __future__ import annotations

import torch


def tiny_batch(seed: int = 1) -> dict[str, torch.Tensor]:
    """obs uint8 (2, 4, 3, 32, 32), action (2, 4, 6) in [-1, 1], is_first (2, 4) set at t = 0."""
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(2, 4, dtype=torch.bool)
    is_first[:, 0] = True
    return {
        "obs": torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8, generator=g),
        "action": torch.rand(2, 4, 6, generator=g) * 2 - 1,
        "is_first": is_first,
    }
