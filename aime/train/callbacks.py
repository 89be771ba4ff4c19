"""Where training metrics go: metrics.jsonl and TensorBoard, written once per report by Ray Train.

Runs inside Ray Train's controller (a ``UserCallback``), which sees every worker's report; rank 0's
metrics are the run's. The run directory must be reachable from the controller's node: on a
multi-node cluster put ``results_dir`` on shared storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.train import UserCallback

from aime.run.rundir import MetricsWriter


class MetricsLogger(UserCallback):
    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self._jsonl: MetricsWriter | None = None
        self._tensorboard: Any = None

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        record = dict(metrics[0]) if metrics else {}
        step = int(record.pop("step", 0))
        if not record:
            return
        if self._jsonl is None:
            self._jsonl = MetricsWriter(Path(self.run_dir) / "metrics.jsonl")
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(Path(self.run_dir) / "tensorboard"))
        if checkpoint is not None:
            record["train/checkpoint"] = checkpoint.path
        self._jsonl.write(step, record)
        for name, value in record.items():
            if isinstance(value, int | float):
                self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()
