"""``aime tune`` on the driver: check the sweep, prepare its data once, run the Tuner (or resume it),
and write the results.

    <results_dir>/<name>-<UTC time>/          the experiment directory
        sweep.yaml                            the resolved sweep (what --resume reads)
        replay/                               episodes collected once, when the base names no store
        tune/                                 Ray Tune's own state (resume)
        trials/<trial id>/                    each trial's aime run directory (config, metrics, checkpoints)
        results.csv, metric.png, best.yaml, best.json   written by report.py
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aime.config import Config, ConfigError, dump_yaml
from aime.storage import atomic_write_text
from aime.tune.check import check_sweep
from aime.tune.config import SweepConfig, load_sweep
from aime.tune.report import SweepReport, short_value, write_report
from aime.tune.space import param_space, scheduler, searcher
from aime.tune.trial import trainable

SWEEP_FILE = "sweep.yaml"
TUNE_DIR = "tune"


def new_experiment_dir(sweep: SweepConfig) -> Path:
    return Path(sweep.results_dir) / f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def resumed_sweep(experiment_dir: str | Path) -> SweepConfig:
    path = Path(experiment_dir) / SWEEP_FILE
    if not path.exists():
        raise ConfigError(f"{experiment_dir} is not a sweep's experiment directory (no {SWEEP_FILE})")
    return load_sweep(path)


def run_sweep(
    sweep: SweepConfig,
    experiment_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> SweepReport:
    """Run (or, with ``resume``, continue) the sweep; Ray must be initialised. Finished trials of a
    resumed sweep are kept, unfinished and errored ones run again."""
    import ray
    from ray import tune

    experiment_dir = Path(experiment_dir or new_experiment_dir(sweep)).resolve()
    base = check_sweep(sweep, ray.cluster_resources())
    experiment_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        atomic_write_text(experiment_dir / SWEEP_FILE, dump_yaml(sweep))
    replay_root = base.replay.root or prepare_replay(base, experiment_dir, progress)
    run = trainable(sweep, experiment_dir, replay_root)
    lines = trial_lines(sweep.metric, base.train.steps, sweep.total_trials()) if progress else None
    if resume:
        if not tune.Tuner.can_restore(str(experiment_dir / TUNE_DIR)):
            raise ConfigError(f"{experiment_dir / TUNE_DIR} holds no Tune state to resume")
        tuner = tune.Tuner.restore(
            str(experiment_dir / TUNE_DIR), run, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            run,
            param_space=param_space(sweep),
            tune_config=tune.TuneConfig(
                metric=sweep.metric,
                mode=sweep.mode,
                num_samples=sweep.samples,
                scheduler=scheduler(sweep),
                search_alg=searcher(sweep),
                max_concurrent_trials=sweep.max_concurrent_trials,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(experiment_dir),
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                callbacks=[lines] if lines else [],
                verbose=0,
            ),
        )
    grid = tuner.fit()
    return write_report(grid, sweep, experiment_dir, replay_root)


def prepare_replay(base: Config, experiment_dir: Path, progress: bool) -> str:
    """The base experiment's data budget, collected once for every trial (offline: collect.episodes +
    collect.online_episodes), when the base names no replay store. Reused on resume."""
    from aime.actors.collect import collect
    from aime.replay import ReplayStore

    root = experiment_dir / "replay"
    episodes = base.collect.episodes + base.collect.online_episodes
    have = len({f.meta.episode_id for f in ReplayStore(root).scan()})
    if have < episodes:
        cfg = replace(base, run_id="sweep-data", replay=replace(base.replay, root=str(root)))
        if progress:
            print(f"sweep: collecting {episodes} {base.env.task} episodes once for every trial into {root}")
        collect(cfg, progress=progress, episodes=episodes)
    return str(root)


def trial_lines(metric: str, steps: int, total: int) -> Any:
    """A Tune callback printing one line per finished or failed trial."""
    from ray.tune import Callback

    class TrialLines(Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.done += 1
            result = trial.last_result or {}
            value = result.get(metric)
            shown = f"{value:.3f}" if isinstance(value, int | float) else "n/a"
            params = ", ".join(f"{k}={short_value(v)}" for k, v in (trial.config.get("params") or {}).items())
            early = f" (stopped at step {result.get('step')})" if result.get("step", steps) < steps else ""
            print(f"trial {self.done}/{total} done: {trial.trial_id} {params}  {metric} {shown}{early}")

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            print(f"trial {trial.trial_id} failed after its retries (max_failures): see {trial.local_path}")

    return TrialLines()
