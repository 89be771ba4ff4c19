"""``aime train`` on the driver: the replay stream, the Ray Train TorchTrainer, and its results.

replay store --ReplayBuffer.dataset--> TorchTrainer(datasets={"replay"}) --> train_worker x N
train_worker --ray.train.report(metrics, checkpoint)--> <run_dir>/checkpoints/train/stepNNNNNNNN/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aime.config import Config, to_dict
from aime.eval.split import HeldOutSplit
from aime.replay import ReplayBuffer
from aime.run.seeding import derive_seed
from aime.train.checkpoint import read_meta


@dataclass(frozen=True)
class TrainSummary:
    steps: int
    checkpoint: str | None
    metrics: dict[str, Any]


def check_train_config(cfg: Config) -> None:
    """Problems a worker would only hit after start-up, reported before anything starts."""
    if cfg.model.image_size != cfg.env.image_size:
        raise ValueError(f"model.image_size {cfg.model.image_size} != env.image_size {cfg.env.image_size}")
    if cfg.train.zero_stage == 3:
        # DeepSpeed 0.19's ZeRO-3 hooks fail in the backward of the per-step posterior rollout
        # ("active_backward_submodules is empty during backward pass"), even with only the VAE,
        # LSTM and prior enabled. Refuse it here rather than after the workers have started. (RGB will
        # also need whole per-task gradients, which ZeRO-3 partitions away.)
        raise ValueError(
            "train.zero_stage=3 is not supported yet: ZeRO-3's parameter hooks fail on the world model's "
            "per-step rollout; use train.zero_stage <= 2"
        )


def train(cfg: Config, run_dir: Path, resume_from: str | None = None, progress: bool = True) -> TrainSummary:
    """Train on ``cfg.replay.root``; ``resume_from`` is a checkpoint directory of this run."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from aime.train.callbacks import MetricsLogger
    from aime.train.worker import train_worker

    check_train_config(cfg)
    t = cfg.train
    use_gpu = ray.cluster_resources().get("GPU", 0) >= t.num_workers if t.use_gpu == "auto" else t.use_gpu
    buffer = ReplayBuffer(cfg.replay, t, seed=derive_seed(cfg.seed, "replay"))
    # Every worker draws grad_accum batches per step; one spare batch each absorbs drop_last. A resumed
    # run continues the window ids where the checkpoint's step left them.
    start = read_meta(Path(resume_from))["step"] if resume_from else 0
    per_step = t.grad_accum * t.num_workers
    held_out = HeldOutSplit(seed=cfg.seed, eval_fraction=t.eval_fraction)  # the split aime eval uses
    dataset = buffer.dataset(
        num_batches=(t.steps - start) * per_step + t.num_workers,
        first_batch=start * per_step,
        episode_filter=held_out.training_files,
    )
    trainer = TorchTrainer(
        train_worker,
        # Passed to the workers, not as resume_from_checkpoint (deprecated in Ray Train v2): a worker
        # prefers the checkpoint Ray Train hands it after a failure, else starts from this one.
        train_loop_config={
            "config": to_dict(cfg),
            "resume_from": resume_from,
            "run_dir": str(run_dir.resolve()),
        },
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": t.cpus_per_worker}
        ),
        datasets={"replay": dataset},
        run_config=RunConfig(  # type: ignore[call-arg]
            name="train",
            storage_path=str((run_dir / "checkpoints").resolve()),
            checkpoint_config=CheckpointConfig(num_to_keep=t.keep_checkpoints),
            failure_config=FailureConfig(max_failures=t.max_failures),
            callbacks=[
                MetricsLogger(  # type: ignore[list-item]
                    str(run_dir.resolve()),
                    total_steps=t.steps,
                    wandb_config=to_dict(cfg) if t.wandb else None,
                )
            ],
            # Every report is already in metrics.jsonl and on the progress bar: keep the log quiet.
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
    )
    result = _fit_with_progress(trainer, run_dir / "metrics.jsonl", start, t.steps, progress)
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}")
    metrics = dict(result.metrics or {})
    summary = TrainSummary(
        steps=int(metrics.get("step", t.steps)),
        checkpoint=result.checkpoint.path if result.checkpoint else None,
        metrics=metrics,
    )
    if summary.checkpoint:
        from aime.train.figures import write_figures

        write_figures(summary.checkpoint, run_dir, cfg.replay.root or "", seed=cfg.seed)
    (run_dir / "train.json").write_text(json.dumps(summary.__dict__, indent=2, default=str) + "\n")
    return summary


def _fit_with_progress(trainer: Any, metrics_path: Path, start: int, steps: int, progress: bool) -> Any:
    """``trainer.fit()`` in a thread while the driver shows a progress bar fed by metrics.jsonl."""
    import threading

    from tqdm import tqdm

    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=fit, name="aime-train-fit", daemon=True)
    thread.start()
    bar = tqdm(total=steps, initial=start, unit="step", disable=not progress, dynamic_ncols=True)
    seen = 0
    while thread.is_alive():
        thread.join(timeout=1.0)
        if metrics_path.exists():
            lines = metrics_path.read_text().splitlines()
            for line in lines[seen:]:
                record = json.loads(line)
                if "train/total" in record:
                    bar.update(max(0, record["step"] - bar.n))
                    loss, wait = record["train/total"], record.get("train/data_wait_fraction", 0.0)
                    bar.set_postfix_str(f"loss {loss:.4g}  data wait {wait:.0%}", refresh=False)
            seen = len(lines)
    bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
