"""``aime tune`` on the driver: check the sweep, prepare its data once, run the Tuner (or resume it),
and write the results.

    <results_dir>/<name>-<UTC time>/          the experiment directory
        sweep.yaml                            the resolved sweep (what --resume reads)
        replay/                               episodes collected once, when the base names no store
        tune/                                 Ray Tune's own state (resume)
        trials/<trial id>/                    each trial's aime run directory (config, metrics, checkpoints)
        results.csv, metric.png, best.yaml, best.json   written by report.py

With ``results_dir`` on shared storage (``s3://...``) the experiment directory is there: trials,
episodes and Tune's state are written there directly; the driver writes sweep.yaml and the report in
a staging copy (``aime/storage/mirror.py``), pulls the trials' records into it to write the report,
pushes, and removes it.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aime.config import Config, ConfigError, dump_yaml
from aime.storage import atomic_write_text, resolve_filesystem
from aime.storage.mirror import drop, is_uri, pull, push, start_staging
from aime.tune.check import check_sweep
from aime.tune.config import SweepConfig, load_sweep
from aime.tune.report import SweepReport, short_value, write_report
from aime.tune.space import param_space, scheduler, searcher
from aime.tune.trial import trainable

SWEEP_FILE = "sweep.yaml"
TUNE_DIR = "tune"
NEW_OUTPUT = "RAY_AIR_NEW_OUTPUT"  # Tune's console: "0" is its legacy reporter
NOT_STAGED = ("replay", "tune", "checkpoints")  # what the driver never pulls from a shared experiment
NOT_PUSHED = ("replay", "tune", "trials")  # written there by the collectors, Tune and the trials


def new_experiment_dir(sweep: SweepConfig) -> str:
    """A path or URI: ``<results_dir>/<name>-<UTC time>``."""
    return f"{sweep.results_dir.rstrip('/')}/{sweep.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def resumed_sweep(experiment_dir: str | Path) -> SweepConfig:
    location = str(experiment_dir).rstrip("/")
    folder = Path(location)
    if is_uri(location):
        try:
            folder = pull(location, skip=(*NOT_STAGED, "trials"))
        except FileNotFoundError:
            raise ConfigError(f"{location} does not exist") from None
    try:
        path = folder / SWEEP_FILE
        if not path.exists():
            raise ConfigError(f"{experiment_dir} is not a sweep's experiment directory (no {SWEEP_FILE})")
        return load_sweep(path)
    finally:
        drop(folder)  # a URI's copy: run_sweep stages its own


def run_sweep(
    sweep: SweepConfig,
    experiment_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> SweepReport:
    """Run (or, with ``resume``, continue) the sweep; Ray must be initialised. Finished trials of a
    resumed sweep are kept, unfinished and errored ones run again."""
    location = str(experiment_dir or new_experiment_dir(sweep)).rstrip("/")
    remote = location if is_uri(location) else None
    local = start_staging(location) if remote else Path(location).resolve()  # sweep.yaml, the report
    try:
        return _run(sweep, local, remote, resume=resume, progress=progress)
    finally:
        if remote:
            shutil.rmtree(local, ignore_errors=True)  # pushed (or failed): the staging copy goes


def _run(sweep: SweepConfig, local: Path, remote: str | None, *, resume: bool, progress: bool) -> SweepReport:
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    location = remote or str(local)  # trials, episodes and Tune's state
    base = check_sweep(sweep, ray.cluster_resources())
    local.mkdir(parents=True, exist_ok=True)
    if not resume:
        atomic_write_text(local / SWEEP_FILE, dump_yaml(sweep))
        push(local, skip=NOT_PUSHED)
    replay_root = base.replay.root or prepare_replay(base, location, progress)
    run = trainable(sweep, location, replay_root)
    lines = trial_lines(sweep.metric, base.train.steps, sweep.total_trials()) if progress else None
    fs, fs_path = resolve_filesystem(location) if remote else (None, location)
    state = f"{fs_path}/{TUNE_DIR}"
    if resume:
        if not tune.Tuner.can_restore(state, storage_filesystem=fs):
            raise ConfigError(f"{location}/{TUNE_DIR} holds no Tune state to resume")
        tuner = tune.Tuner.restore(
            state, run, resume_unfinished=True, resume_errored=True, storage_filesystem=fs
        )
    else:
        search = searcher(sweep)
        tuner = tune.Tuner(
            run,
            param_space=param_space(sweep),
            tune_config=tune.TuneConfig(
                metric=sweep.metric,
                mode=sweep.mode,
                num_samples=sweep.samples,
                scheduler=scheduler(sweep),
                search_alg=search,
                # Tune limits a Searcher's concurrency itself, but not a BasicVariantGenerator's.
                max_concurrent_trials=None
                if isinstance(search, BasicVariantGenerator)
                else sweep.max_concurrent_trials,
                time_budget_s=sweep.time_budget_s,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=fs_path,
                storage_filesystem=fs,
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                callbacks=[lines] if lines else [],
                verbose=0,
            ),
        )
    grid = _fit_quietly(tuner)
    if not remote:
        return write_report(grid, sweep, local, replay_root)
    pull(remote, skip=NOT_STAGED)  # the trials' records, for the report (no checkpoints, no episodes)
    report = write_report(grid, sweep, local, replay_root, location=remote)
    push(local, skip=NOT_PUSHED)
    return report


def _fit_quietly(tuner: Any) -> Any:
    """``tuner.fit()`` with Tune's legacy console (unless the user chose one), restored afterwards.

    Tune's newer console output prints an experiment box and a TensorBoard hint even at verbose=0;
    its legacy reporter at verbose=0 prints nothing, and aime prints its own line per trial.
    """
    chosen = os.environ.get(NEW_OUTPUT)
    os.environ[NEW_OUTPUT] = chosen or "0"
    try:
        return tuner.fit()
    finally:
        if chosen is None:
            os.environ.pop(NEW_OUTPUT, None)


def prepare_replay(base: Config, experiment: str, progress: bool) -> str:
    """The base experiment's data budget, collected once for every trial (offline: collect.episodes +
    collect.online_episodes) into ``<experiment>/replay``, when the base names no replay store.
    Reused on resume."""
    from aime.actors.collect import collect
    from aime.replay import ReplayStore

    root = f"{experiment}/replay"
    episodes = base.collect.episodes + base.collect.online_episodes
    have = len({f.meta.episode_id for f in ReplayStore(root).scan()})
    if have < episodes:
        cfg = replace(base, run_id="sweep-data", replay=replace(base.replay, root=str(root)))
        if progress:
            print(f"sweep: collecting {episodes} {base.env.task} episodes once for every trial into {root}")
        collect(cfg, progress=progress, episodes=episodes)
    return root


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
