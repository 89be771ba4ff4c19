"""A sweep: the base experiment, a search space over any config key, the metric, and how to search.

cluster/configs/sweep/<name>.yaml (+ key=value overrides) --load_sweep--> SweepConfig
SweepConfig --check_sweep--> every key and value of the space is a valid aime Config, the metric is
                             one the trainer reports, the resources fit the cluster (else an error
                             naming the key / metric and the valid ones)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from aime.config import Config, ConfigError, load_config
from aime.config.loader import CONFIG_DIR, build, deep_merge, parse_override, read_yaml
from aime.metrics import EVAL_PSNR_GAIN_ONE_STEP

VARIANT = "variant"  # the space key that picks one of ``variants``
KINDS = ("uniform", "loguniform", "choice", "grid", "randint")


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{randint: [lo, hi]}``,
    ``{choice: [a, b, ...]}`` or ``{grid: [a, b, ...]}`` (every value, crossed with the other grids)."""

    kind: str
    values: tuple[Any, ...]


# Keys PBT may change in the middle of a trial: what a checkpoint does not fix (the optimizer's rates,
# gradient clipping, the loss weights). Shapes (latent_dim, prior.components, ...) cannot change.
PBT_MUTABLE = (
    "model.optim.lr",
    "model.optim.grad_clip",
    "model.optim.perception_lr_scale",
    "model.optim.tokenizer_lr_scale",
    "model.loss.",
)


@dataclass(frozen=True)
class SchedulerConfig:
    name: Literal["asha", "pbt", "none"] = "asha"
    grace_period: int = 1  # asha: periodic evaluations before a trial may be stopped
    reduction_factor: float = 2.0  # asha
    # pbt: every perturbation_interval periodic evaluations, a trial in the bottom quantile continues
    # from a top trial's checkpoint with that trial's values perturbed (x0.8 / x1.2, or resampled).
    perturbation_interval: int = 1
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    # pbt: perturb only once every trial has reached the evaluation (Ray Tune's synchronous PBT): the
    # same decisions however fast each trial runs, at the cost of waiting for the slowest.
    synch: bool = False

    def __post_init__(self) -> None:
        if self.perturbation_interval < 1:
            raise ValueError(f"perturbation_interval must be >= 1, got {self.perturbation_interval}")
        if not 0.0 < self.quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in (0, 0.5], got {self.quantile_fraction}")
        if not 0.0 <= self.resample_probability <= 1.0:
            raise ValueError(f"resample_probability must be in [0, 1], got {self.resample_probability}")


@dataclass(frozen=True)
class SweepConfig:
    name: str = "sweep"
    base: str = "tiny"  # the experiment every trial starts from (a name in experiment/ or a path)
    overrides: tuple[str, ...] = ()  # key=value applied to every trial, before the searched keys
    space: dict[str, Any] = field(default_factory=dict)  # dotted config key -> {kind: values}
    # Named sets of overrides, searched as the space key "variant" (an ablation's arms).
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metric: str = EVAL_PSNR_GAIN_ONE_STEP  # reported at every periodic evaluation
    mode: Literal["max", "min"] = "max"
    samples: int = 1  # draws of the space (each grid point is drawn this many times)
    search: Literal["random", "optuna"] = "random"  # random covers grid; optuna is an extra
    seed: int = 0  # of the search's draws: the same sweep draws the same trials
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    max_concurrent_trials: int = 1
    max_failures: int = 1  # retries of a failed trial; the sweep goes on either way
    cpus_per_trial: float | None = None  # None: what the trial's training reserves (see check_sweep)
    gpus_per_trial: float = 0.0
    # Wall-clock seconds for the whole sweep: Tune stops every trial still running when it is spent
    # (their last periodic evaluation stands in the table). None: trials run to train.steps.
    time_budget_s: float | None = None
    results_dir: str = "results/sweeps"

    def __post_init__(self) -> None:
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be > 0 seconds (or null), got {self.time_budget_s}")

    def dimensions(self) -> dict[str, Dimension]:
        out = {}
        for key, spec in self.space.items():
            if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
                raise ConfigError(f"space.{key}: expected one of {{{', '.join(KINDS)}: [...]}}, got {spec!r}")
            kind, values = next(iter(spec.items()))
            if not isinstance(values, list) or not values:
                raise ConfigError(f"space.{key}.{kind}: expected a non-empty list, got {values!r}")
            if kind in ("uniform", "loguniform", "randint") and len(values) != 2:
                raise ConfigError(f"space.{key}.{kind}: expected [low, high], got {values!r}")
            out[key] = Dimension(kind, tuple(values))
        return out

    def total_trials(self) -> int:
        """samples x the size of every grid (Tune crosses grids and repeats them per sample)."""
        total = self.samples
        for dim in self.dimensions().values():
            total *= len(dim.values) if dim.kind == "grid" else 1
        return total

    def evaluations_per_trial(self) -> int:
        """Periodic evaluations a full trial reports: one per checkpoint, the last at the final step."""
        t = self.trial_config({}).train
        return -(-t.steps // t.checkpoint_every)

    def trial_overrides(self, params: dict[str, Any]) -> list[str]:
        """The overrides of one trial: the sweep's own, then its sampled values (as YAML, which keeps
        1e-06 a float where JSON's spelling would read back as a string)."""
        out = list(self.overrides)
        for key, value in params.items():
            if key == VARIANT:
                if value not in self.variants:
                    defined = ", ".join(self.variants)
                    raise ConfigError(f"variant {value!r} is not defined; variants: {defined}")
                out += self.variants[value]
            else:
                out.append(f"{key}={_yaml_value(value)}")
        return out

    def trial_config(self, params: dict[str, Any], extra: tuple[str, ...] = ()) -> Config:
        return load_config(Config, self.base, [*self.trial_overrides(params), *extra])


def _yaml_value(value: Any) -> str:
    if isinstance(value, np.generic):  # Tune samples numpy scalars
        value = value.item()
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """A sweep YAML (a path, or a name in cluster/configs/sweep/) with ``key=value`` overrides."""
    file = Path(path)
    if not file.exists():
        named = CONFIG_DIR / "sweep" / f"{path}.yaml"
        if not named.exists():
            valid = sorted(p.stem for p in (CONFIG_DIR / "sweep").glob("*.yaml"))
            raise ConfigError(f"sweep config {str(path)!r} not found; named sweeps: {', '.join(valid)}")
        file = named
    data = read_yaml(file)
    for item in overrides:
        key, value = parse_override(item)
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        data = deep_merge(data, nested) if not key.startswith("space.") else _set_space(data, key, value)
    return build(SweepConfig, data)


def _set_space(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``space.model.optim.lr={loguniform: [...]}``: the searched key keeps its dots."""
    searched = key.removeprefix("space.")
    return {**data, "space": {**(data.get("space") or {}), searched: value}}
