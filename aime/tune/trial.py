"""One trial: a real ``aime train`` run (Ray Train workers, checkpoints, run directory) whose periodic
evaluations are reported to Tune.

    Tune trial (function, no CPUs of its own) --params--> Config --train(callbacks=[TuneReporter])-->
        Ray Train workers --periodic eval at each checkpoint--> TuneReporter --> Tune (ASHA, ...)

A trial's run directory is ``<experiment>/trials/<trial id>`` (a path, or a URI on shared storage:
then the trial works in a staging copy like any run, ``aime/storage/mirror.py``); a trial Tune
retries after a failure continues from that directory's newest checkpoint Ray Train registered.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from aime.metrics import EVAL
from aime.storage import atomic_write_text
from aime.tune.config import SweepConfig

TRIALS = "trials"


def trainable(sweep: SweepConfig, experiment_dir: str | Path, replay_root: str | None = None) -> Any:
    """The Tune trainable for ``sweep``: use it as ``tune.Tuner(trainable(...), ...)``. Trials take
    no CPUs themselves; their Ray Train workers and sampler actors reserve what training needs.
    ``experiment_dir`` is a path or a shared-storage URI."""
    from ray import tune

    from aime.storage.mirror import is_uri

    location = str(experiment_dir).rstrip("/")
    if not is_uri(location):
        location = str(Path(location).resolve())
    run = partial(run_trial, sweep=sweep, experiment_dir=location, replay_root=replay_root)
    run.__name__ = "aime_trial"  # type: ignore[attr-defined]
    # Tune refuses an empty request; a token of memory schedules the trial without taking a CPU.
    return tune.with_resources(run, {"cpu": 0, "gpu": sweep.gpus_per_trial, "memory": 2**20})


def run_trial(
    config: dict[str, Any], *, sweep: SweepConfig, experiment_dir: str, replay_root: str | None
) -> None:
    from ray import tune

    from aime.run.rundir import create_run_dir
    from aime.storage.mirror import finish, is_uri, staging_dir
    from aime.train.checkpoint import resume_location
    from aime.train.driver import train

    trial_id = tune.get_context().get_trial_id()
    params = dict(config["params"])
    # Quoted: YAML would read an id such as 54664_00000 as the integer 5466400000.
    extra = [f"results_dir={experiment_dir}/{TRIALS}", f"run_id='{trial_id}'"]
    if is_uri(experiment_dir):  # a copy an earlier attempt left on this node (stopped, killed) is stale
        shutil.rmtree(staging_dir(f"{experiment_dir}/{TRIALS}/{trial_id}"), ignore_errors=True)
    if replay_root:
        extra.append(f"replay.root={replay_root}")
    cfg, run_dir = create_run_dir(sweep.trial_config(params, tuple(extra)))
    atomic_write_text(run_dir / "params.json", json.dumps(params, indent=2) + "\n")
    try:
        train(
            cfg,
            run_dir,
            resume_from=resume_location(run_dir),  # a retried trial continues where it failed
            progress=False,
            callbacks=[reporter()],
        )
    finally:
        finish(run_dir)  # on shared storage: pushed there, staging removed


def reporter() -> Any:
    """A Ray Train callback that forwards each periodic evaluation (not the loss records between
    them) to Tune, with the step and the checkpoint it scored."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class TuneReporter(TuneReportCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            if checkpoint is not None and any(k.startswith(EVAL) for k in metrics[0]):
                super().after_report(run_context, metrics, checkpoint)

    return TuneReporter()
