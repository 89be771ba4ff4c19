"""One trial: a real ``aime train`` run (Ray Train workers, checkpoints, run directory) whose periodic
evaluations are reported to Tune, each with a Tune checkpoint that points at the aime checkpoint it
scored.

    Tune trial (function, no CPUs of its own)
        --params--> Config --train(callbacks=[EvaluationForwarder]), in a thread--> Ray Train workers
        Ray Train controller --each periodic eval + checkpoint path, over a Ray queue--> this trial
        --tune.report(metrics, checkpoint={aime_checkpoint.json})--> Tune (ASHA, PBT, ...)

Ray's own TuneReportCallback forwards metrics only; PBT needs checkpoints to clone, and a trial
that Tune restores from another trial's pointer (PBT's exploit) continues from that trial's aime
checkpoint, under a fresh Ray Train run name, with its own (perturbed) config: the optimizer's peak
rates come from the config, not the checkpoint (``aime.train.schedule.apply_peak_rates``).

A trial's run directory is ``<experiment>/trials/<trial id>`` (a path, or a URI on shared storage:
then the trial works in a staging copy like any run, ``aime/storage/mirror.py``); a trial Tune
retries after a failure continues from that directory's newest checkpoint Ray Train registered.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from aime.metrics import EVAL
from aime.storage import atomic_write_text
from aime.tune.config import VARIANT, SweepConfig

TRIALS = "trials"
LINEAGE = "lineage.jsonl"  # a PBT trial's adoptions of other trials' checkpoints
POINTER = "aime_checkpoint.json"  # a Tune checkpoint's one file: {"checkpoint": aime checkpoint, "step"}


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

    from aime.checkpoints import checkpoint_step
    from aime.run.rundir import create_run_dir
    from aime.storage.mirror import finish, is_uri, remote_of, staging_dir
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
    cfg = sweep.trial_config(params, tuple(extra))
    adopted = adopted_checkpoint(f"{experiment_dir}/{TRIALS}/{trial_id}", f"{experiment_dir}/{TRIALS}")
    if adopted and checkpoint_step(adopted) >= cfg.train.steps:
        # PBT exploited this trial at its last evaluation: no step is left to train from the adopted
        # checkpoint, and a Ray Train run of none would cost a whole start-up. The trial's run
        # directory stays as its own training left it (config, params, last evaluation).
        return
    cfg, run_dir = create_run_dir(cfg)
    atomic_write_text(run_dir / "params.json", json.dumps(params, indent=2) + "\n")
    if adopted:
        record_lineage(run_dir, adopted, params)
    resume_from = adopted or resume_location(run_dir)  # a retried trial continues where it failed
    # Ray Train restores a run name's own newest checkpoint before any other: an adopted checkpoint
    # starts a fresh name, a retry continues under the name of the checkpoint it resumes.
    if adopted:
        name = f"adopted-{secrets.token_hex(3)}"
    else:  # checkpoints/<name>/step...: the folder of the checkpoint resumed, else Ray Train's "train"
        name = PurePosixPath(resume_from).parent.name if resume_from else "train"
    try:
        report_evaluations(
            lambda callback: train(
                cfg, run_dir, resume_from=resume_from, progress=False, callbacks=[callback], run_name=name
            ),
            remote_of(run_dir),
        )
    finally:
        finish(run_dir)  # on shared storage: pushed there, staging removed


def adopted_checkpoint(run_dir: str, trials: str) -> str | None:
    """The aime checkpoint Tune restored this trial from when it is another trial's (PBT's exploit),
    else None: a first start, or a retry, which continues from its own checkpoints (under
    ``run_dir``, the trial's path or URI). Only checkpoints of this experiment's trials are ever
    loaded (DeepSpeed's loader unpickles)."""
    from ray import tune

    from aime.storage.mirror import shared_location

    restored = tune.get_checkpoint()
    if restored is None:
        return None
    with restored.as_directory() as folder:
        pointed = str(json.loads(Path(folder, POINTER).read_text())["checkpoint"])
    if pointed.startswith(shared_location(run_dir).rstrip("/") + "/"):
        return None
    if not pointed.startswith(trials.rstrip("/") + "/") or ".." in PurePosixPath(pointed).parts:
        raise ValueError(f"Tune restored this trial from {pointed}, which is not a checkpoint under {trials}")
    return pointed


def record_lineage(run_dir: Path, checkpoint: str, params: dict[str, Any]) -> None:
    """Append to ``<run>/lineage.jsonl`` where this trial continued from and how its searched values
    changed: {"checkpoint", "step", "perturbed": {key: [the checkpoint's value, this trial's]}}."""
    import yaml

    from aime.checkpoints import CONFIG, checkpoint_step
    from aime.storage.location import join, read_text

    # Read where it lies: staging the other trial's run could overwrite that trial's working copy
    # when both run on this node (they share its staging folder).
    trained = yaml.safe_load(read_text(join(checkpoint, CONFIG)))
    perturbed = {key: [_dotted(trained, key), value] for key, value in params.items() if key != VARIANT}
    entry = {"checkpoint": checkpoint, "step": checkpoint_step(checkpoint), "perturbed": perturbed}
    lineage = run_dir / LINEAGE
    previous = lineage.read_text() if lineage.exists() else ""
    atomic_write_text(lineage, previous + json.dumps(entry, default=str) + "\n")


def _dotted(config: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None  # type: ignore[assignment]
    return config


def report_evaluations(run: Callable[[Any], Any], remote: str | None) -> None:
    """``run(callback)`` (aime's train) in a thread, while this one reports each periodic evaluation
    the callback forwards to Tune, with a pointer to the aime checkpoint it scored. ``remote``: the
    run's URI on shared storage (Ray Train reports paths within its filesystem), else None."""
    from ray.util.queue import Empty, Queue

    from aime.storage.mirror import as_uri

    queue: Any = Queue(actor_options={"num_cpus": 0})
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run(forwarder(queue))
        except BaseException as error:  # raised again in this thread, below
            failure.append(error)

    thread = threading.Thread(target=target, name="aime-train", daemon=True)
    thread.start()
    while True:
        try:
            item = queue.get(timeout=1.0)
        except Empty:
            if thread.is_alive() or not queue.empty():
                continue
            break
        path = item["checkpoint"]
        _report(item["metrics"], as_uri(remote, path) if remote else path)
    thread.join()
    if failure:
        raise failure[0]


def _report(metrics: dict[str, Any], checkpoint: str) -> None:
    from ray import tune

    from aime.storage import atomic_write_json

    with tempfile.TemporaryDirectory(prefix="aime-pointer-") as folder:
        atomic_write_json(Path(folder, POINTER), {"checkpoint": checkpoint, "step": metrics.get("step")})
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def forwarder(queue: Any) -> Any:
    """A Ray Train callback (it runs in the Ray Train controller) that puts each periodic evaluation
    (not the loss records between them) on ``queue`` with the path of the checkpoint it scored."""
    from ray.train.v2.api.callback import UserCallback

    class EvaluationForwarder(UserCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            if checkpoint is not None and any(k.startswith(EVAL) for k in metrics[0]):
                queue.put({"metrics": dict(metrics[0]), "checkpoint": checkpoint.path})

    return EvaluationForwarder()
