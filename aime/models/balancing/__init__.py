"""Combining the task losses into one update: RGB (rotation-based gradient balancing) or a plain sum."""

from aime.models.balancing.balancer import BalanceResult, GradientBalancer
from aime.models.balancing.rgb import RGBResult, rgb_combine
from aime.models.balancing.surrogate import surrogate_loss, task_gradients

__all__ = [
    "BalanceResult",
    "GradientBalancer",
    "RGBResult",
    "rgb_combine",
    "surrogate_loss",
    "task_gradients",
]
