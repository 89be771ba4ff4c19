"""Errors a sweep would otherwise meet only after its trials start, reported before any does."""

from __future__ import annotations

from typing import Any

from aime.config import Config, ConfigError
from aime.train.driver import check_cpu_budget, check_replay, check_train_config, training_cpus
from aime.train.periodic_eval import REPORTED
from aime.tune.config import PBT_MUTABLE, Dimension, SweepConfig


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
    if sweep.scheduler.name == "pbt":
        check_pbt(sweep, dimensions, cluster)
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


def check_pbt(sweep: SweepConfig, dimensions: dict[str, Dimension], cluster: dict[str, float] | None) -> None:
    """PBT perturbs keys in the middle of a trial, so only keys a checkpoint does not fix; it compares
    a population, so trials must run at the same time, and more than one perturbation must fit."""
    mutated = [key for key, dim in dimensions.items() if dim.kind != "grid"]
    if not mutated:
        raise ConfigError("scheduler pbt needs a space key to perturb (uniform, loguniform, randint, choice)")
    for key in mutated:
        if not key.startswith(PBT_MUTABLE):
            raise ConfigError(
                f"space.{key}: PBT cannot change it in the middle of a trial (a checkpoint fixes it); "
                f"keys PBT may perturb: {', '.join(k + '*' if k.endswith('.') else k for k in PBT_MUTABLE)}"
            )
    population = min(sweep.total_trials(), sweep.max_concurrent_trials)
    if population < 2:
        raise ConfigError(
            f"scheduler pbt compares trials that run together, but at most {population} runs at once "
            f"(samples x grids = {sweep.total_trials()}, "
            f"max_concurrent_trials = {sweep.max_concurrent_trials})"
        )
    t = sweep.trial_config({}).train
    if t.keep_checkpoints < 3:  # the newest, the best, and the one another trial is adopting
        raise ConfigError(
            f"train.keep_checkpoints ({t.keep_checkpoints}) must be >= 3 under scheduler pbt: a trial's "
            "checkpoint must outlive the moment another trial adopts it"
        )
    evaluations = sweep.evaluations_per_trial()
    if sweep.scheduler.perturbation_interval >= evaluations:
        raise ConfigError(
            f"scheduler.perturbation_interval ({sweep.scheduler.perturbation_interval}) must be below the "
            f"{evaluations} periodic evaluations a trial reports (train.steps / train.checkpoint_every)"
        )
    if cluster is not None:
        per_trial = training_cpus(sweep.trial_config({}))
        if population * per_trial > cluster.get("CPU", 0.0) + 1e-9:
            raise ConfigError(
                f"scheduler pbt runs {population} trials at once (max_concurrent_trials) of {per_trial:g} "
                f"CPUs each, but the Ray cluster has {cluster.get('CPU', 0.0):g}: lower "
                "max_concurrent_trials or the trial's train.cpus_per_worker / train.sampler_cpus"
            )


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
