"""Run directories: ``results/<run_id>/`` with the exact config, versions, seeds and metrics; with
``results_dir`` a URI, a staging folder mirrored there (``aime/storage/mirror.py``)."""

from __future__ import annotations

import json
import platform
import secrets
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aime import console
from aime.config import Config, dump_yaml
from aime.storage import atomic_write_text
from aime.storage.mirror import is_uri, push, start_staging


def new_run_id(cfg: Config) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{cfg.env.task}-{secrets.token_hex(2)}"


def create_run_dir(cfg: Config) -> tuple[Config, Path]:
    """Resolve the run id and replay root, write config.yaml, versions.json and seeds.json; the
    known console noise the run's commands filter out goes to console.log."""
    run_id = cfg.run_id or new_run_id(cfg)
    if is_uri(cfg.results_dir):  # shared storage: a local working copy, mirrored (aime/storage/mirror.py)
        remote = f"{cfg.results_dir.rstrip('/')}/{run_id}"
        run_dir = start_staging(remote)
        replay_root = cfg.replay.root or f"{remote}/replay"
    else:
        run_dir = Path(cfg.results_dir) / run_id
        replay_root = cfg.replay.root or str(run_dir / "replay")
    cfg = replace(cfg, run_id=run_id, replay=replace(cfg.replay, root=replay_root))
    run_dir.mkdir(parents=True, exist_ok=True)
    console.keep_in(run_dir / "console.log")  # what the console leaves out, kept with the run
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg))
    atomic_write_text(run_dir / "versions.json", json.dumps(versions(), indent=2) + "\n")
    atomic_write_text(run_dir / "seeds.json", json.dumps({"seed": cfg.seed}, indent=2) + "\n")
    push(run_dir)  # a shared run directory has its config from the start (resume reads it)
    return cfg, run_dir


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for module in (
        "aime",
        "numpy",
        "pyarrow",
        "torch",
        "ray",
        "mujoco",
        "dm_control",
        "gymnasium",
        "deepspeed",
    ):
        out[module] = _version_of(module)
    out["git_commit"] = _git_commit()
    return out


def _version_of(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module.replace("_", "-") if module == "dm_control" else module)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


class MetricsWriter:
    """Appends one JSON object per line to ``metrics.jsonl``: ``{"time": ..., "step": ..., name: value}``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open(self.path, "a", buffering=1)

    def write(self, step: int, metrics: dict[str, float | int]) -> None:
        record = {"time": round(time.time(), 3), "step": step, **metrics}
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()
