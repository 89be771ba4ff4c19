"""Where training metrics go: metrics.jsonl and TensorBoard, written once per report by Ray Train.

Runs inside Ray Train's controller (a ``UserCallback``), which sees every worker's report; rank 0's
metrics are the run's. The run directory must be reachable from the controller's node: on a
multi-node cluster put ``results_dir`` on shared storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ray.train import UserCallback

from aime.metrics import TRAIN_CHECKPOINT
from aime.run.rundir import MetricsWriter
from aime.storage.mirror import as_uri, push, remote_of


class MetricsLogger(UserCallback):
    def __init__(self, run_dir: str, *, total_steps: int, wandb_config: dict[str, Any] | None = None):
        """``wandb_config``: the run's resolved config to log to wandb, or None for no wandb."""
        self.run_dir = run_dir
        self.total_steps = total_steps
        self.wandb_config = wandb_config
        self._jsonl: MetricsWriter | None = None
        self._tensorboard: Any = None
        self._wandb: Any = None

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        record = dict(metrics[0]) if metrics else {}
        step = int(record.pop("step", 0))
        if not record:
            return
        if self._jsonl is None:
            self._jsonl = MetricsWriter(Path(self.run_dir) / "metrics.jsonl")
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(Path(self.run_dir) / "tensorboard"))
            if self.wandb_config is not None:
                self._wandb = _start_wandb(self.run_dir, self.wandb_config)
        remote = remote_of(self.run_dir)  # a run directory on shared storage (aime/storage/mirror.py)
        if checkpoint is not None:
            record[TRAIN_CHECKPOINT] = as_uri(remote, checkpoint.path) if remote else checkpoint.path
        self._jsonl.write(step, record)
        for name, value in record.items():
            if isinstance(value, int | float):
                self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()
        if remote and checkpoint is not None:
            push(self.run_dir)  # the shared copy's metrics keep up with its checkpoints
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, int | float)}, step=step)
            if step >= self.total_steps:  # Ray Train has no end-of-run callback: the last report is it
                self._wandb.finish()
                self._wandb = None

    def after_exception(self, run_context: Any, worker_exceptions: Any) -> None:
        if self._wandb is not None:
            self._wandb.finish(exit_code=1)
            self._wandb = None


def _start_wandb(run_dir: str, config: dict[str, Any]) -> Any:
    """A wandb run that never prompts: offline into <run_dir>/wandb unless WANDB_API_KEY is set."""
    import os

    import wandb

    mode: Literal["online", "offline"] = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "aime"),
        name=str(config.get("run_id")),
        id=str(config.get("run_id")),
        resume="allow",
        dir=run_dir,
        mode=mode,
        config=config,
        settings=wandb.Settings(silent=True, console="off"),
    )
