"""Value ranges the types cannot say, checked by the loader on every key before anything starts.

A bad value fails with the key's name (``model.latent_dim: must be >= 1, got -5``) at load time,
not deep inside torch or after Ray has started. Explicit keys first; then two rules for the model's
many sizes and weights: every integer under ``model.`` is a size or count (>= 1) and every float
under ``model.loss.`` is a weight (>= 0), except where ``RANGES`` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is out of range
    high_open: bool = False

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}"


AT_LEAST_1 = Range(1)
AT_LEAST_0 = Range(0)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, low_open=True, high_open=True)  # a share of something, leaving some over
UNBOUNDED = Range()

_AT_LEAST_1 = (
    "env.image_size env.action_repeat env.max_episode_steps "
    "collect.episodes collect.workers collect.envs_per_worker collect.max_attempts_per_episode "
    "replay.capacity_steps replay.chunk_steps replay.row_group_steps "
    "train.batch_size train.seq_len train.steps train.num_workers train.grad_accum train.sampler_workers "
    "train.windows_per_read train.plans_per_read train.log_every train.checkpoint_every "
    "train.keep_checkpoints "
    "lenses.workers lenses.epochs lenses.batch_size ray.num_cpus ray.object_store_memory_mb"
)
_AT_LEAST_0 = (
    "collect.online_episodes collect.cpus_per_worker collect.max_task_retries "
    "train.prefetch_batches train.eval_windows train.max_failures train.warmup_steps train.weight_decay "
    "train.cpus_per_worker train.sampler_cpus lenses.cpus_per_worker model.vae.blocks_per_stage "
    "model.perception.commitment model.prior.alpha_prior_shape model.adversarial.gp_weight"
)
_POSITIVE = (
    "log_every_seconds replay.refresh_seconds replay.frame_cache_gb train.gpus_per_worker model.optim.lr "
    "model.vae.gaussian_std model.vae.min_std model.prior.min_std model.prior.alpha_prior_rate"
)

RANGES: dict[str, Range] = {
    **{key: AT_LEAST_1 for key in _AT_LEAST_1.split()},
    **{key: AT_LEAST_0 for key in _AT_LEAST_0.split()},
    **{key: POSITIVE for key in _POSITIVE.split()},
    "train.eval_fraction": FRACTION,
    "collect.resources": AT_LEAST_0,
    "model.optim.balancing.consensus_decay": Range(0, 1, high_open=True),
    "model.optim.balancing.proximity": Range(0, 1, low_open=True),
    "model.perception.ema_decay": Range(0, 1, low_open=True, high_open=True),
}


def range_of(key: str, value: Any) -> Range | None:
    """The range ``key`` must lie in, or None where any value of its type will do."""
    if key in RANGES:
        return RANGES[key]
    if isinstance(value, bool):
        return None
    if key.startswith("model.") and isinstance(value, int):
        return AT_LEAST_1
    if key.startswith("model.loss.") and isinstance(value, float):
        return AT_LEAST_0
    return None


def out_of_range(key: str, value: Any) -> str | None:
    """The message for a value outside its key's range (None when it is inside, or unconstrained).
    Lists are checked item by item (``model.vae.channels``)."""
    if isinstance(value, dict):
        value = list(value.values())
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        if not isinstance(item, int | float) or isinstance(item, bool):
            continue
        rule = range_of(key, item)
        if rule is not None and not rule.allows(item):
            return f"{key}: must be {rule}, got {value!r}"
    return None
