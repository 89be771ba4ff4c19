"""The model's random draws, with an optional generator per sample.

Batching changes which random numbers a sample gets (``torch.randn_like`` over (B, ...) draws B rows
from one stream), so a served request would depend on what it was batched with. Inside
``per_sample_noise(seeds)`` every draw is made row by row, row b from its own generator seeded by
``seeds[b]``: a sample's result is a function of its own inputs and seed, whatever the batch holds.
Outside it (training, evaluation) the draws are torch's own, from the global generator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

# A plain module global, not a context variable: torch.compile guards on it (None in training).
_generators: list[torch.Generator] | None = None
_lock = threading.Lock()


@contextmanager
def per_sample_noise(seeds: Sequence[int], device: torch.device | str = "cpu") -> Iterator[None]:
    """Draws inside come from one generator per batch row (dimension 0), seeded by ``seeds``."""
    global _generators
    with _lock:  # one per-sample scope at a time in a process
        _generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        try:
            yield
        finally:
            _generators = None


def randn_like(x: Tensor) -> Tensor:
    """Standard normal noise shaped like ``x`` (B, ...)."""
    if _generators is None:
        return torch.randn_like(x)
    return _per_row(torch.randn, x, _generators)


def rand_like(x: Tensor) -> Tensor:
    """Uniform [0, 1) noise shaped like ``x`` (B, ...)."""
    if _generators is None:
        return torch.rand_like(x)
    return _per_row(torch.rand, x, _generators)


def _per_row(draw, x: Tensor, generators: list[torch.Generator]) -> Tensor:  # type: ignore[no-untyped-def]
    assert x.dim() >= 1 and x.shape[0] == len(generators), (tuple(x.shape), len(generators))
    rows = [draw(x.shape[1:], generator=g, device=x.device, dtype=x.dtype) for g in generators]
    return torch.stack(rows)
