"""Errors a sweep would otherwise meet only after its trials start, reported before any does."""

from __future__ import annotations

from typing import Any

from aime.config import Config, ConfigError
from aime.train.driver import check_cpu_budget, check_replay, check_train_config
from aime.train.periodic_eval import REPORTED
from aime.tune.config import Dimension, SweepConfig


def check_sweep(sweep: SweepConfig, cluster: dict[str, float] | None = None) -> Config:
    """Validate the space, the metric and the resources; returns the base trial config."""
    base = sweep.trial_config({})
    dimensions = sweep.dimensions()
    for key, dimension in dimensions.items():
        for value in _representatives(dimension):
            try:
                check_train_config(sweep.trial_config({key: value}))
            except (ConfigError, ValueError) as error:
                raise ConfigError(f"space.{key}: value {value!r} is not a valid config: {error}") from None
    if sweep.metric not in REPORTED:
        raise ConfigError(
            f"metric {sweep.metric!r} is not reported by the periodic evaluation; "
            f"valid metrics: {', '.join(REPORTED)}"
        )
    if base.train.eval_windows == 0:
        raise ConfigError("train.eval_windows is 0 in the base config: trials would never report the metric")
    if base.train.checkpoint_every >= base.train.steps and sweep.scheduler.name != "none":
        raise ConfigError(
            f"train.checkpoint_every ({base.train.checkpoint_every}) >= train.steps ({base.train.steps}): "
            f"each trial reports {sweep.metric} once, so scheduler {sweep.scheduler.name} cannot compare "
            "trials early; lower checkpoint_every or use scheduler.name=none"
        )
    if base.replay.root:
        check_replay(base)  # the store every trial trains on has training episodes
    if cluster is not None:
        check_cpu_budget(base, cluster.get("CPU", 0.0))
        if sweep.gpus_per_trial > cluster.get("GPU", 0.0):
            raise ConfigError(
                f"gpus_per_trial={sweep.gpus_per_trial:g} but the Ray cluster has "
                f"{cluster.get('GPU', 0.0):g} GPUs"
            )
    return base


def _representatives(dimension: Dimension) -> list[Any]:
    """Values that stand for the dimension: every listed value, or both ends of a range."""
    if dimension.kind in ("uniform", "loguniform", "randint"):
        low, high = dimension.values
        if not low < high:
            raise ConfigError(f"{dimension.kind}: low {low!r} must be below high {high!r}")
        if dimension.kind == "loguniform" and low <= 0:
            raise ConfigError(f"loguniform: low {low!r} must be > 0")
        return [low, high - 1] if dimension.kind == "randint" else [low, high]
    return list(dimension.values)
