"""``aime train`` on the driver: the replay stream, the Ray Train TorchTrainer, and its results.

TorchTrainer --> train_worker x N, each streaming its own fixed sequence of replay windows
train_worker --ray.train.report(metrics, checkpoint)--> <run_dir>/checkpoints/train/stepNNNNNNNN/
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aime import console
from aime import metrics as M
from aime.checkpoints import checkpoint_step, resolve
from aime.config import Config, to_dict
from aime.models.overshoot import start_steps
from aime.replay.split import HeldOutSplit
from aime.replay.store import EpisodeFile, ReplayStore
from aime.run import ray_metrics
from aime.storage import atomic_write_json, resolve_filesystem
from aime.storage.mirror import as_uri, push, remote_of
from aime.train.periodic_eval import SCORE, plan_periodic_eval
from aime.train.stages import check_stage
from aime.train.zero3 import check_zero3_supported


@dataclass(frozen=True)
class TrainSummary:
    steps: int
    checkpoint: str | None
    metrics: dict[str, Any]
    # From train() being called to the first step's report: Ray Train's workers, DeepSpeed, the data
    # stream's first batch and compilation (None when no step ran).
    seconds_to_first_step: float | None = None
    # Where those seconds went (``startup_breakdown``): the driver's checks, Ray Train spawning rank 0's
    # worker process and that process starting (imports, torch.distributed) until its loop began, then
    # the worker's phases (aime/train/startup.py): imports, device, model, compile_setup, engine,
    # restore, periodic_eval, first_batch (what the overlapped stream still took) and first_step
    # (compilation and CUDA-graph recording); then, not a phase, overlapped_stream_ready: when the
    # stream's first batch was ready, in seconds from the worker's start (it is fetched in a thread).
    startup: dict[str, float] | None = None


def check_train_config(cfg: Config) -> None:
    """Problems a worker would only hit after start-up, reported before anything starts."""
    if cfg.model.image_size != cfg.env.image_size:
        raise ValueError(f"model.image_size {cfg.model.image_size} != env.image_size {cfg.env.image_size}")
    check_stage(cfg)
    if cfg.model.loss.overshoot > 0:
        start_steps(cfg.model.loss, cfg.train.seq_len)  # windows long enough for the open-loop loss
    if cfg.train.zero_stage == 3:
        check_zero3_supported(cfg.model)  # RGB balancing and the adversarial pillar need ZeRO <= 2


def check_replay(cfg: Config) -> list[EpisodeFile]:
    """The store's listing, if it has episodes of at least seq_len steps outside the held-out split."""
    root, T = cfg.replay.root, cfg.train.seq_len
    if not root:
        raise ValueError("replay.root is not set: point it at a replay store (replay.root=DIR)")
    files = ReplayStore(root).scan()
    held_out = HeldOutSplit.of(cfg)
    usable = [f for f in held_out.training_files(files) if f.num_rows >= T]
    if not usable:
        raise ValueError(
            f"no training episodes of at least {T} steps in {root} ({len(files)} episode files, "
            f"train.eval_fraction={cfg.train.eval_fraction} held out): collect some with "
            f"`aime collect --config <experiment> replay.root={root}`, import them with "
            "`aime replay import`, or lower train.seq_len"
        )
    return files


def check_cpu_budget(cfg: Config, cluster_cpus: float, *, online_collection: bool = False) -> None:
    """Train workers, each rank's sampler actors (and online rollout actors) must fit the cluster's
    CPUs together, or some of them wait forever for a CPU that never frees."""
    t, c = cfg.train, cfg.collect
    parts = {
        f"train.num_workers x train.cpus_per_worker = {t.num_workers} x {t.cpus_per_worker:g}": (
            t.num_workers * t.cpus_per_worker
        ),
        f"train.num_workers x train.sampler_workers x train.sampler_cpus = "
        f"{t.num_workers} x {t.sampler_workers} x {t.sampler_cpus:g}": (
            t.num_workers * t.sampler_workers * t.sampler_cpus
        ),
    }
    if online_collection:
        parts[f"collect.workers x collect.cpus_per_worker = {c.workers} x {c.cpus_per_worker:g}"] = (
            c.workers * c.cpus_per_worker
        )
    needed = sum(parts.values())  # training_cpus(cfg), plus the online actors
    if needed > cluster_cpus + 1e-9:
        raise ValueError(
            f"training needs {needed:g} CPUs but the Ray cluster has {cluster_cpus:g}: "
            + " + ".join(parts)
            + "; lower one of these (fractions are fine: they are reservations, not cores)"
        )


def training_cpus(cfg: Config) -> float:
    """The CPUs one training run reserves: its Ray Train workers and each rank's sampler actors."""
    t = cfg.train
    return t.num_workers * (t.cpus_per_worker + t.sampler_workers * t.sampler_cpus)


def resolve_use_gpu(cfg: Config, cluster_gpus: float) -> bool:
    """``train.use_gpu``: auto means GPUs when the cluster has ``train.gpus_per_worker`` for each worker."""
    t = cfg.train
    needed = t.num_workers * t.gpus_per_worker
    if t.use_gpu == "auto":
        return cluster_gpus >= needed
    if t.use_gpu and cluster_gpus < needed:
        raise ValueError(
            f"train.use_gpu=true with train.num_workers={t.num_workers} x train.gpus_per_worker="
            f"{t.gpus_per_worker:g} needs {needed:g} GPUs, but the Ray cluster has {cluster_gpus:g}: lower "
            "train.num_workers, or set train.use_gpu=auto (CPU workers when GPUs are missing)"
        )
    return bool(t.use_gpu)


def worker_resources(cfg: Config, use_gpu: bool) -> dict[str, float]:
    """What each Ray Train worker reserves: its CPUs, and its share of a GPU when it uses one."""
    t = cfg.train
    return {"CPU": t.cpus_per_worker, **({"GPU": t.gpus_per_worker} if use_gpu else {})}


def train(
    cfg: Config,
    run_dir: Path,
    resume_from: str | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    run_name: str = "train",
) -> TrainSummary:
    """Train on ``cfg.replay.root``; ``resume_from`` is a checkpoint directory of this run (or, for
    PBT, another trial's). ``callbacks`` are extra Ray Train callbacks (aime tune forwards periodic
    evaluations to Tune); ``run_name`` names the checkpoints' folder (``checkpoints/<run_name>``), under
    which Ray Train restores its own newest checkpoint first."""
    import ray
    import ray.train
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    from aime.train.worker import train_worker

    started = time.time()
    check_train_config(cfg)
    t = cfg.train
    use_gpu = resolve_use_gpu(cfg, ray.cluster_resources().get("GPU", 0))
    check_cpu_budget(cfg, ray.cluster_resources().get("CPU", 0))  # aime run adds its online actors
    files = check_replay(cfg)
    start = checkpoint_step(resume_from) if resume_from else 0  # another trial's too, never staged
    eval_plan = plan_periodic_eval(cfg, files) if t.stage == "world_model" else []
    trainer = TorchTrainer(
        train_worker,
        # Passed to the workers, not as resume_from_checkpoint (deprecated in Ray Train v2): a worker
        # prefers the checkpoint Ray Train hands it after a failure, else starts from this one.
        train_loop_config={
            "config": to_dict(cfg),
            "resume_from": resume_from,
            "run_dir": str(run_dir.resolve()),
            "eval_plan": eval_plan,
            "quiet": console.filtering(),
        },
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=use_gpu, resources_per_worker=worker_resources(cfg, use_gpu)
        ),
        run_config=_run_config(cfg, run_dir, run_name, scored=bool(eval_plan), callbacks=callbacks),
    )
    try:
        result, startup = _fit_with_progress(
            trainer, run_dir / "metrics.jsonl", start, t.steps, progress, started, cfg.run_id or ""
        )
        if result.error is not None:
            raise result.error
    except ray.train.TrainingFailedError as error:
        raise RuntimeError(
            f"training failed after {t.max_failures} restarts (train.max_failures): {error}\n"
            f"continue from the last checkpoint with: aime train --resume {remote_of(run_dir) or run_dir}"
        ) from error
    return _finish(cfg, run_dir, result, startup)


def _finish(cfg: Config, run_dir: Path, result: Any, startup: dict[str, float]) -> TrainSummary:
    """The run's summary from Ray Train's result; figures of its last checkpoint; train.json written
    and the run directory pushed to its shared storage, if any."""
    metrics = dict(result.metrics or {})
    checkpoint = result.checkpoint.path if result.checkpoint else None
    remote = remote_of(run_dir)
    if checkpoint and remote:  # Ray Train reports a path within the remote filesystem
        checkpoint = as_uri(remote, checkpoint)
    summary = TrainSummary(
        steps=int(metrics.get("step", cfg.train.steps)),
        checkpoint=checkpoint,
        metrics=metrics,
        seconds_to_first_step=startup.get("total"),
        startup=startup or None,
    )
    if summary.checkpoint:
        from aime.train.figures import write_figures

        local = resolve(summary.checkpoint)  # a URI: the staged model files
        model = cfg.train.stage == "world_model"
        write_figures(local, run_dir, cfg.replay.root or "", seed=cfg.seed, model=model)
    atomic_write_json(run_dir / "train.json", summary.__dict__)
    push(run_dir)
    return summary


def _run_config(cfg: Config, run_dir: Path, name: str, *, scored: bool, callbacks: Sequence[Any]) -> Any:
    """Where Ray Train keeps checkpoints and which, how often it restarts, what it tells the driver."""
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig

    from aime.train.callbacks import MetricsLogger

    t = cfg.train
    # The newest checkpoint is always kept; with periodic evaluation the others are the best by score.
    checkpoints = (
        CheckpointConfig(
            num_to_keep=t.keep_checkpoints, checkpoint_score_attribute=SCORE, checkpoint_score_order="max"
        )
        if scored
        else CheckpointConfig(num_to_keep=t.keep_checkpoints)
    )
    return RunConfig(  # type: ignore[call-arg]
        name=name,
        **_checkpoint_storage(run_dir),
        checkpoint_config=checkpoints,
        failure_config=FailureConfig(max_failures=t.max_failures),
        callbacks=[
            MetricsLogger(  # type: ignore[list-item]
                str(run_dir.resolve()), total_steps=t.steps, wandb_config=to_dict(cfg) if t.wandb else None
            ),
            *callbacks,
        ],
        # Every report is already in metrics.jsonl and on the progress bar: keep the log quiet.
        logging_config=LoggingConfig(log_level="WARNING"),
    )


def _checkpoint_storage(run_dir: Path) -> dict[str, Any]:
    """Where Ray Train persists checkpoints: ``<run_dir>/checkpoints``, or for a run directory on
    shared storage the same folder at its URI, written by the workers directly (never via the driver)."""
    remote = remote_of(run_dir)
    if remote is None:
        return {"storage_path": str((run_dir / "checkpoints").resolve())}
    filesystem, path = resolve_filesystem(f"{remote}/checkpoints")
    return {"storage_path": path, "storage_filesystem": filesystem}


def _fit_with_progress(
    trainer: Any, metrics_path: Path, start: int, steps: int, progress: bool, started: float, run_id: str
) -> tuple[Any, dict[str, float]]:
    """``trainer.fit()`` in a thread while the driver shows a progress bar fed by metrics.jsonl (and
    the Ray dashboard's training series). Returns the result and the start-up breakdown
    (``startup_breakdown``; empty when no step ran)."""
    import threading

    from tqdm import tqdm

    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["launched"] = time.time()
            outcome["result"] = trainer.fit()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=fit, name="aime-train-fit", daemon=True)
    thread.start()
    bar = tqdm(total=steps, initial=start, unit="step", disable=not progress, dynamic_ncols=True)
    seen = 0
    startup: dict[str, float] = {}
    while thread.is_alive():
        thread.join(timeout=1.0)
        records, seen = complete_records(metrics_path, seen)
        for record in records:
            ray_metrics.training_record(run_id, record)  # the driver outlives the run's last report
            if M.TRAIN_TOTAL in record:
                if not startup and record["time"] >= started:  # not a resumed run's old lines
                    startup = startup_breakdown(record, started, outcome.get("launched", started))
                    bar.write(describe_startup(startup))
                bar.update(max(0, record["step"] - bar.n))
                loss, wait = record[M.TRAIN_TOTAL], record.get(M.TRAIN_DATA_WAIT, 0.0)
                bar.set_postfix_str(f"loss {loss:.4g}  data wait {wait:.0%}", refresh=False)
    bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], startup


def startup_breakdown(first_report: dict[str, Any], started: float, launched: float) -> dict[str, float]:
    """Seconds from ``started`` to the first step's report ("total") and per phase: "driver" (its
    checks and the periodic evaluation's plan, until ``trainer.fit()`` was called at ``launched``),
    "worker_spawn" (Ray Train's controller and placement group until rank 0's worker process was
    created), "worker_init" (that process starting: Python, Ray, imports, torch.distributed, until
    the worker's loop began), then the worker's own phases, then what it did beside them
    (``overlapped_*``: seconds from the worker's start, not phases)."""
    out = {"total": round(first_report["time"] - started, 1), "driver": round(launched - started, 1)}
    began = first_report.get(M.STARTUP_WORKER_STARTED_AT)
    spawned = first_report.get(M.STARTUP_PROCESS_STARTED_AT)
    if began is not None and spawned is not None:
        spawned = min(max(spawned, launched), began)  # a process Ray started earlier: no spawn time
        out |= {"worker_spawn": round(spawned - launched, 1), "worker_init": round(began - spawned, 1)}
    elif began is not None:
        out["workers"] = round(began - launched, 1)
    times = (M.STARTUP_WORKER_STARTED_AT, M.STARTUP_PROCESS_STARTED_AT)
    phases = {
        k: v
        for k, v in first_report.items()
        if k.startswith(M.STARTUP) and k not in times and not k.startswith(M.STARTUP_OVERLAPPED)
    }
    out |= {k[len(M.STARTUP) :]: round(v, 1) for k, v in phases.items()}
    overlapped = {k: v for k, v in first_report.items() if k.startswith(M.STARTUP_OVERLAPPED)}
    return out | {OVERLAPPED + k[len(M.STARTUP_OVERLAPPED) :]: round(v, 1) for k, v in overlapped.items()}


OVERLAPPED = "overlapped_"  # a breakdown key of work done beside the phases (in another thread)


def describe_startup(startup: dict[str, float]) -> str:
    """One console line: "first training step 62 s after the trainer started (workers 20 s, ...)"."""
    phases = {k: v for k, v in startup.items() if k != "total" and not k.startswith(OVERLAPPED)}
    parts = ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in phases.items())
    ready = startup.get(OVERLAPPED + "stream_ready")
    if ready is not None:
        parts += f"; the stream's first batch was ready {ready:.0f} s into the worker, in a thread"
    return f"first training step {startup['total']:.0f} s after the trainer started" + (
        f" ({parts})" if parts else ""
    )


def complete_records(metrics_path: Path, seen: int) -> tuple[list[dict[str, Any]], int]:
    """The JSON records of ``metrics_path`` after the first ``seen`` complete lines, and the new count.
    A last line still being written (no newline yet, or not yet valid JSON) is left for the next read:
    the progress bar must never abort a training that goes on in its thread."""
    if not metrics_path.exists():
        return [], seen
    lines = metrics_path.read_text().split("\n")[:-1]  # the text after the last newline is partial
    records = []
    for line in lines[seen:]:
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # written out of order or cut short: read it again next time
        seen += 1
    return records, seen
