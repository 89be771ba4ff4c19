"""The sweep's space as Ray Tune search space objects, and the searcher and scheduler around it."""

from __future__ import annotations

from typing import Any

from aime.tune.config import Dimension, SweepConfig


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """{"params": {dotted key: tune domain}}: one nested dict, so keys keep their dots."""
    return {"params": {key: _domain(dim) for key, dim in sweep.dimensions().items()}}


def pbt_mutations(sweep: SweepConfig) -> dict[str, Any]:
    """What PBT perturbs: every searched key but the grids (a grid is crossed, never perturbed)."""
    return {key: _domain(dim) for key, dim in sweep.dimensions().items() if dim.kind != "grid"}


def _domain(dim: Dimension) -> Any:
    from ray import tune

    if dim.kind == "uniform":
        return tune.uniform(*dim.values)
    if dim.kind == "loguniform":
        return tune.loguniform(*dim.values)
    if dim.kind == "randint":
        return tune.randint(*dim.values)
    if dim.kind == "choice":
        return tune.choice(list(dim.values))
    return tune.grid_search(list(dim.values))


def scheduler(sweep: SweepConfig) -> Any:
    """ASHA stops weak trials at its rungs (counted in periodic evaluations); PBT moves weak trials
    onto strong trials' checkpoints with perturbed values (aime/tune/trial.py); none runs every trial
    to the end."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    s = sweep.scheduler
    if s.name == "asha":
        max_t = max(1, sweep.evaluations_per_trial())
        return ASHAScheduler(
            max_t=max_t, grace_period=min(s.grace_period, max_t), reduction_factor=s.reduction_factor
        )
    if s.name == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",  # one iteration = one periodic evaluation
            perturbation_interval=s.perturbation_interval,
            hyperparam_mutations={"params": pbt_mutations(sweep)},
            quantile_fraction=s.quantile_fraction,
            resample_probability=s.resample_probability,
            synch=s.synch,
        )
    return FIFOScheduler()


def searcher(sweep: SweepConfig) -> Any:
    if sweep.search == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # Tune's default, seeded; a search algorithm passed in must limit the concurrency itself.
        return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=sweep.max_concurrent_trials)
    try:
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as error:  # optuna is an extra: pip install optuna
        raise ImportError(f"search=optuna needs the optuna package (pip install optuna): {error}") from None
    if any(dim.kind == "grid" for dim in sweep.dimensions().values()):
        raise ValueError("search=optuna cannot search a grid dimension: use choice, or search=random")
    return OptunaSearch(seed=sweep.seed)
