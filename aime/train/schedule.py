"""The learning-rate schedule: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.

A pure function of the optimizer step, so a resumed run continues at exactly the same position
(the step is restored from the checkpoint, the schedule needs no state of its own).
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """The lr multiplier at optimizer step ``step`` (0-based): 0 -> 1 over warm-up, then 1 -> min."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
