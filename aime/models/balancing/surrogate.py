"""Per-task gradients, and a surrogate loss whose gradient is a given update.

``surrogate_loss(params, update)`` is sum_p <p, update_p> with the update detached: back-propagating
it writes exactly ``update`` into ``p.grad`` through whatever backward the trainer uses (plain
``.backward()``, DeepSpeed's ``engine.backward`` with its loss scaling and gradient partitioning,
DDP's reducer), so balancing needs no hooks into the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def task_gradients(
    losses: Sequence[Tensor], params: Sequence[nn.Parameter], *, retain_graph: bool = False
) -> Tensor:
    """One backward pass per loss -> (n_tasks, P) flat gradients (zeros where a task does not reach).

    The graph is freed after the last loss unless ``retain_graph``.
    """
    rows = []
    for i, loss in enumerate(losses):
        retain = retain_graph or i + 1 < len(losses)
        grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    return torch.stack(rows)


def surrogate_loss(params: Sequence[nn.Parameter], update: Tensor) -> Tensor:
    """A scalar whose gradient w.r.t. each parameter is its slice of ``update`` (P,)."""
    total = sum(p.numel() for p in params)
    assert update.shape == (total,), ("update must be flat over params", tuple(update.shape), total)
    # One flat product rather than one per parameter: two kernels instead of hundreds of small ones.
    flat = torch.cat([p.reshape(-1) for p in params])  # (P,)
    return (flat * update.detach().to(flat.dtype)).sum()
