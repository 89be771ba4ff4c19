"""The optimizer and its learning-rate schedule: AdamW over the model's per-pillar parameter groups,
linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.

A pure function of the optimizer step, so a resumed run continues at exactly the same position
(the step is restored from the checkpoint, the schedule needs no state of its own).

Why a LambdaLR and not torch's SequentialLR(LinearLR, CosineAnnealingLR): the groups peak at
different rates (tokenizer and perception lr scales) and each decays to ``min_lr_ratio`` of its own
peak, while CosineAnnealingLR's ``eta_min`` is one absolute rate for every group; its chained form
also updates the rate multiplicatively step by step, so a resumed run would not land on exactly the
same rates. One closed-form multiplier says the schedule in six lines and is tested point by point.
"""

from __future__ import annotations

import math

import torch

from aime.config import Config


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """The lr multiplier at optimizer step ``step`` (0-based): 0 -> 1 over warm-up, then 1 -> min."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: torch.nn.Module, cfg: Config
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``model.param_groups`` (trainable parameters only) and its warm-up + cosine schedule."""
    t = cfg.train
    optimizer = torch.optim.AdamW(
        model.param_groups(cfg.model.optim.lr),  # type: ignore[operator]
        betas=t.adam_betas,
        weight_decay=t.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(
            step, warmup_steps=t.warmup_steps, total_steps=t.steps, min_lr_ratio=t.min_lr_ratio
        ),
    )
    return optimizer, schedule


def apply_peak_rates(schedule: torch.optim.lr_scheduler.LambdaLR, peaks: list[float]) -> None:
    """Make ``peaks`` (each group's rate from the run's config) the schedule's peak rates at its
    current step. A resumed run takes its rates from its config, not from the checkpoint it loaded:
    the same values for a plain resume, the perturbed ones when PBT continues another trial's
    checkpoint (aime/tune/trial.py)."""
    if len(peaks) != len(schedule.optimizer.param_groups):
        raise ValueError(f"{len(peaks)} peak rates for {len(schedule.optimizer.param_groups)} groups")
    schedule.base_lrs = list(peaks)
    for group, peak, factor in zip(schedule.optimizer.param_groups, peaks, schedule.lr_lambdas, strict=True):
        group["initial_lr"] = peak
        group["lr"] = peak * factor(schedule.last_epoch)
