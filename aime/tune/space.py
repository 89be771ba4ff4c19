"""The sweep's space as Ray Tune search space objects, and the searcher and scheduler around it."""

from __future__ import annotations

from typing import Any

from aime.tune.config import SweepConfig


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """{"params": {dotted key: tune domain}}: one nested dict, so keys keep their dots."""
    from ray import tune

    domains: dict[str, Any] = {}
    for key, dim in sweep.dimensions().items():
        if dim.kind == "uniform":
            domains[key] = tune.uniform(*dim.values)
        elif dim.kind == "loguniform":
            domains[key] = tune.loguniform(*dim.values)
        elif dim.kind == "randint":
            domains[key] = tune.randint(*dim.values)
        elif dim.kind == "choice":
            domains[key] = tune.choice(list(dim.values))
        else:
            domains[key] = tune.grid_search(list(dim.values))
    return {"params": domains}


def scheduler(sweep: SweepConfig) -> Any:
    """ASHA stops weak trials at its rungs (counted in periodic evaluations); none runs every trial
    to the end."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = sweep.scheduler
    if s.name == "asha":
        max_t = max(1, _evaluations(sweep))
        return ASHAScheduler(
            max_t=max_t, grace_period=min(s.grace_period, max_t), reduction_factor=s.reduction_factor
        )
    return FIFOScheduler()


def searcher(sweep: SweepConfig) -> Any:
    if sweep.search == "random":
        return None  # Tune's default: random draws, grids crossed
    try:
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as error:  # optuna is an extra: pip install optuna
        raise ImportError(f"search=optuna needs the optuna package (pip install optuna): {error}") from None
    if any(dim.kind == "grid" for dim in sweep.dimensions().values()):
        raise ValueError("search=optuna cannot search a grid dimension: use choice, or search=random")
    return OptunaSearch()


def _evaluations(sweep: SweepConfig) -> int:
    """Periodic evaluations a full trial reports: one per checkpoint, the last at the final step."""
    t = sweep.trial_config({}).train
    return -(-t.steps // t.checkpoint_every)
