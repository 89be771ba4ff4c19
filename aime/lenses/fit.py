"""Training a LensBank: all lenses at once, each on its own loss, each stopped on its own.

    train rows {activation: (M, D)}, concepts (M, C) --minibatches--> bank --> logits (B, N)
    logits, labels (B, N) --balanced BCE per lens--> (N,) --sum--> one backward, one AdamW step
    every epoch: validation loss per lens --improved lenses' weights copied into the best snapshot;
                 a lens without improvement for ``patience`` epochs stops--> all stopped: done
    the result: every lens at its own best validation epoch

The lenses share no parameter and AdamW is element-wise, so summing their losses trains each exactly
as it would be trained alone. Gradients of data-parallel workers are averaged by ``average_gradients``
(a no-op by default, so one process runs the same arithmetic; ``worker.py`` injects the all-reduce).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from aime.lenses.bank import LensBank


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 60  # at most; each lens stops earlier when its validation loss stalls
    batch_size: int = 256  # rows per worker per step
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    patience: int = 6  # epochs without a validation improvement before a lens stops
    min_delta: float = 1e-4  # an improvement is a drop of the validation loss by more than this
    standardise: bool = True  # per-sample input standardisation (no affine) for every lens
    seed: int = 0


@dataclass
class LensData:
    """Rows of an activations dataset in memory: {activation: (M, D) float}, concepts (M, C) bool."""

    activations: dict[str, Tensor]
    concepts: Tensor  # (M, C) bool, columns in the order of ``concept_names``
    concept_names: list[str]

    def __len__(self) -> int:
        return int(self.concepts.shape[0])

    def label_columns(self, bank: LensBank) -> Tensor:
        """(N,) the concept column each lens reads, on the data's device."""
        columns = [self.concept_names.index(s.concept) for s in bank.specs]
        return torch.tensor(columns, device=self.concepts.device)

    def labels(self, columns: Tensor, rows: Tensor | slice = slice(None)) -> Tensor:
        """(B, N) float: lens n's concept (column ``columns[n]``) for each row."""
        return self.concepts[rows][:, columns].float()

    def inputs(self, rows: Tensor | slice = slice(None)) -> dict[str, Tensor]:
        return {name: value[rows] for name, value in self.activations.items()}

    def to(self, device: torch.device | str) -> LensData:
        moved = {k: v.to(device) for k, v in self.activations.items()}
        return LensData(moved, self.concepts.to(device), list(self.concept_names))


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: list[int]  # per lens: the epoch whose weights it keeps (1-based)
    best_validation_loss: list[float]
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: mean losses, lenses active


def balanced_bce(logits: Tensor, labels: Tensor, positive_fraction: Tensor) -> Tensor:
    """Per-lens BCE (N,) where each class weighs half: a lens cannot win by predicting the majority."""
    p = positive_fraction.clamp(1e-6, 1 - 1e-6)  # (N,)
    weight = labels * (0.5 / p) + (1 - labels) * (0.5 / (1 - p))  # (B, N)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")  # (B, N)
    return (weight * loss).mean(dim=0)


def fit_bank(
    bank: LensBank,
    train: LensData,
    validation: LensData,
    cfg: FitConfig,
    positive_fraction: Tensor,
    *,
    steps_per_epoch: int | None = None,
    rank: int = 0,
    average_gradients: Callable[[Sequence[Tensor]], None] = lambda grads: None,
    on_epoch: Callable[[dict[str, float]], None] = lambda metrics: None,
) -> FitResult:
    """Train ``bank`` in place; returns when every lens has stopped or after ``cfg.epochs``.

    ``steps_per_epoch`` must be equal on every data-parallel worker (default: one pass over ``train``).
    """
    device = next(bank.parameters()).device
    positive_fraction = positive_fraction.to(device)
    N, B = len(bank.specs), cfg.batch_size
    steps = steps_per_epoch or max(1, -(-len(train) // B))
    optimizer = torch.optim.AdamW(bank.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    params = list(bank.parameters())
    stopping = PerLensStopping(bank, cfg.patience, cfg.min_delta)
    columns = train.label_columns(bank)
    generator = torch.Generator().manual_seed(cfg.seed * 7919 + rank)
    history: list[dict[str, float]] = []
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        bank.train()
        order = _epoch_order(len(train), steps * B, generator).to(device)
        running = torch.zeros((), device=device)
        for k in range(steps):
            rows = order[k * B : (k + 1) * B]
            logits = bank(train.inputs(rows))  # (B, N)
            loss = balanced_bce(logits, train.labels(columns, rows), positive_fraction).sum()
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            average_gradients([p.grad for p in params if p.grad is not None])
            optimizer.step()
            running += loss.detach()
        val = validation_loss(bank, validation, positive_fraction, B * 4)  # (N,)
        active = stopping.update(epoch, val)
        metrics = {
            "epoch": epoch,
            "train_loss": float(running) / (steps * N),
            "validation_loss": float(val.mean()),
            "lenses_active": active,
        }
        history.append(metrics)
        on_epoch(metrics)
        if active == 0:
            break
    stopping.restore()
    bank.eval()
    return FitResult(epoch, stopping.best_epoch.tolist(), stopping.best_loss.tolist(), history)


class PerLensStopping:
    """Early stopping for each lens on its own: the best validation loss so far, the epoch and the
    weights it came with (copied by a per-lens mask, no loop over lenses), epochs since it improved."""

    def __init__(self, bank: LensBank, patience: int, min_delta: float):
        N, device = len(bank.specs), next(bank.parameters()).device
        self.bank, self.patience, self.min_delta = bank, patience, min_delta
        self.weights = {name: p.detach().clone() for name, p in bank.named_parameters()}
        self.best_loss = torch.full((N,), float("inf"), device=device)
        self.best_epoch = torch.zeros(N, dtype=torch.long, device=device)
        self.stale = torch.zeros(N, dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, epoch: int, validation_loss: Tensor) -> int:
        """Record an epoch's validation loss (N,); returns how many lenses are still improving."""
        improved = validation_loss < self.best_loss - self.min_delta
        self.best_loss = torch.where(improved, validation_loss, self.best_loss)
        self.best_epoch = torch.where(improved, torch.full_like(self.best_epoch, epoch), self.best_epoch)
        self.stale = torch.where(improved, torch.zeros_like(self.stale), self.stale + 1)
        keep = self.bank.lens_masks(improved)
        for name, p in self.bank.named_parameters():
            self.weights[name] = torch.where(keep[name], p.detach(), self.weights[name])
        return int((self.stale < self.patience).sum())  # one host sync per epoch

    @torch.no_grad()
    def restore(self) -> None:
        """Every lens back to the weights of its best epoch."""
        for name, p in self.bank.named_parameters():
            p.copy_(self.weights[name])


@torch.no_grad()
def validation_loss(bank: LensBank, data: LensData, positive_fraction: Tensor, batch_size: int) -> Tensor:
    """Mean balanced BCE per lens (N,) over ``data``, in eval mode (no dropout)."""
    was_training = bank.training
    bank.eval()
    total = torch.zeros(len(bank.specs), device=positive_fraction.device)
    columns = data.label_columns(bank)
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        logits = bank(data.inputs(rows))
        total += balanced_bce(logits, data.labels(columns, rows), positive_fraction) * logits.shape[0]
    bank.train(was_training)
    return total / max(1, len(data))


@torch.no_grad()
def predict(bank: LensBank, data: LensData, batch_size: int = 4096) -> Tensor:
    """Logits (M, N) float32 of every row, in eval mode."""
    bank.eval()
    parts = [bank(data.inputs(slice(s, s + batch_size))).float() for s in range(0, len(data), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, len(bank.specs))


def _epoch_order(rows: int, needed: int, generator: torch.Generator) -> Tensor:
    """``needed`` row indices: shuffled passes over ``rows``, as many as it takes."""
    passes = -(-needed // max(1, rows))
    return torch.cat([torch.randperm(rows, generator=generator) for _ in range(passes)])[:needed]
