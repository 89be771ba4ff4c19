"""A finished (or resumed) sweep's results: a table best first, the metric over steps, the best config.

each trial's run directory (metrics.jsonl, config.yaml, checkpoints/) + Tune's per-trial status
    --> results.csv (rank, trial, status, steps, best and last metric, the searched values)
    --> metric.png (the metric at every periodic evaluation, one line per trial)
    --> best.yaml (the best trial's whole config: `aime train --config best.yaml` reproduces it)
    --> best.json (trial, values, metric, its best checkpoint)
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aime.checkpoints import IncompleteCheckpointError, best_checkpoint, resolve, run_dir_of
from aime.config import Config, dump_yaml, load_config
from aime.storage import atomic_save_figure, atomic_write_text
from aime.storage.mirror import drop, is_uri, shared_location, staged_uri
from aime.tune.config import SweepConfig
from aime.tune.trial import TRIALS


@dataclass(frozen=True)
class SweepReport:
    experiment_dir: str  # a path, or a URI on shared storage
    metric: str
    rows: list[dict[str, Any]]  # best first
    best_config: str | None
    best_checkpoint: str | None

    def lines(self) -> list[str]:
        name = self.experiment_dir.rstrip("/").rsplit("/", 1)[-1]
        trials = f"{len(self.rows)} trial" + ("" if len(self.rows) == 1 else "s")
        out = [f"sweep {name}: {trials}, best first by {self.metric}"]
        for row in self.rows:
            values = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "(base config)"
            best = "n/a" if row["best"] is None else f"{row['best']:.3f}"
            status = f"{row['status']:<13} step {row['steps']:<6}"
            out.append(f"  {row['rank']:>2}. {row['trial_id']}  {best}  {status} {values}")
        if self.best_config:
            local = self.best_config.rsplit("/", 1)[-1] if is_uri(self.best_config) else self.best_config
            fetch = "copy it here, then " if is_uri(self.best_config) else ""
            out.append(f"best config: {self.best_config}  ({fetch}aime train --config {local})")
            out.append(f"best checkpoint: {self.best_checkpoint}")
        out.append(f"table: {self.experiment_dir}/results.csv  plot: {self.experiment_dir}/metric.png")
        return out


def write_report(
    grid: Any, sweep: SweepConfig, experiment_dir: Path, replay_root: str | None, location: str | None = None
) -> SweepReport:
    """The report files in ``experiment_dir`` (the trials' records under its ``trials/``);
    ``location`` is where the experiment lives when that is a staging copy of a URI."""
    location = location or str(experiment_dir)
    rows = [_row(result, sweep, experiment_dir) for result in grid]
    sign = 1.0 if sweep.mode == "max" else -1.0
    rows.sort(key=lambda r: (r["best"] is None, -sign * (r["best"] or 0.0)))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    _write_csv(rows, sweep, experiment_dir / "results.csv")
    _plot(rows, sweep.metric, experiment_dir / "metric.png")
    best = rows[0] if rows and rows[0]["best"] is not None else None
    best_yaml = checkpoint = None
    if best is not None:
        best_yaml = experiment_dir / "best.yaml"
        atomic_write_text(best_yaml, _reproducible(best["run_dir"]))
        checkpoint = _best_checkpoint(best["run_dir"])
        summary = {k: best[k] for k in ("trial_id", "params", "best", "steps")} | {"checkpoint": checkpoint}
        atomic_write_text(
            experiment_dir / "best.json", json.dumps(summary | {"metric": sweep.metric}, indent=2) + "\n"
        )
    best_config = f"{location}/best.yaml" if best_yaml else None
    return SweepReport(location, sweep.metric, rows, best_config, checkpoint)


def _best_checkpoint(run_dir: Path) -> str | None:
    """The trial's best checkpoint: a path, or for a trial on shared storage its URI (the staged
    trial records hold no checkpoints: ``checkpoints.resolve`` reads that run's, then its copy goes)."""
    remote = staged_uri(run_dir)
    if remote is None:
        found = best_checkpoint(run_dir)
        return str(found) if found else None
    try:
        staged = resolve(remote)
    except IncompleteCheckpointError:
        return None
    uri = staged_uri(staged)
    drop(run_dir_of(staged))
    return uri


def _row(result: Any, sweep: SweepConfig, experiment_dir: Path) -> dict[str, Any]:
    # The trial's own folder names it: a trial PBT exploited at its last evaluation trains no more,
    # and its last result (and config) are then the other trial's copies.
    trial_id = _trial_id_from_path(result.path) or (result.metrics or {})["trial_id"]
    run_dir = experiment_dir / TRIALS / trial_id
    history = _history(run_dir / "metrics.jsonl", sweep.metric)
    values = [v for _, v in history]
    best = (max(values) if sweep.mode == "max" else min(values)) if values else None
    steps = history[-1][0] if history else 0
    trained = run_dir / "params.json"  # the values the trial's run trained with last
    params = json.loads(trained.read_text()) if trained.exists() else dict(result.config.get("params", {}))
    total = sweep.trial_config(params).train.steps
    status = "error" if result.error else ("finished" if steps >= total else "stopped early")
    return {
        "trial_id": trial_id,
        "status": status,
        "steps": steps,
        "best": best,
        "last": values[-1] if values else None,
        "params": params,
        "history": history,
        "run_dir": run_dir,
    }


def _trial_id_from_path(path: str) -> str | None:
    """Tune names trial folders ``<trainable>_<trial id>_<index>_...``, a trial id being
    ``<experiment hex>_<5 digits>``."""
    found = re.search(r"_([0-9a-f]+_\d{5})_\d+", Path(path).name)
    return found.group(1) if found else None


def _history(metrics_file: Path, metric: str) -> list[tuple[int, float]]:
    if not metrics_file.exists():
        return []
    points = []
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if metric in record:
            points.append((int(record["step"]), float(record[metric])))
    return points


def _write_csv(rows: list[dict[str, Any]], sweep: SweepConfig, path: Path) -> None:
    keys = list(sweep.space)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "rank",
            "trial_id",
            "status",
            "steps",
            f"best {sweep.metric}",
            f"last {sweep.metric}",
            *keys,
            "run_dir",
        ]
    )
    for row in rows:
        writer.writerow(
            [row["rank"], row["trial_id"], row["status"], row["steps"], row["best"], row["last"]]
            + [row["params"].get(k) for k in keys]
            + [shared_location(row["run_dir"])]  # on shared storage: where it lives
        )
    atomic_write_text(path, buffer.getvalue())


def _plot(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        if row["history"]:
            steps, values = zip(*row["history"], strict=True)
            label = ", ".join(f"{k.rsplit('.', 1)[-1]}={short_value(v)}" for k, v in row["params"].items())
            ax.plot(steps, values, marker="o", label=label or row["trial_id"])
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if any(row["history"] for row in rows):
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(path, fig)
    plt.close(fig)


def _reproducible(run_dir: Path) -> str:
    """The trial's whole resolved config, minus what names the trial (run id, results directory)."""
    cfg: Config = load_config(Config, run_dir / "config.yaml")
    return dump_yaml(replace(cfg, run_id=None, results_dir="results"))


def short_value(value: Any) -> str:
    """A searched value as tables and progress lines show it."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
