"""Saving and restoring training state: DeepSpeed's engine state for resuming, plus the consolidated
model files every other reader uses (``aime.checkpoints``: layout, best/newest, loading).

Loading never follows DeepSpeed's ``latest`` file (it can name a save that did not finish): it takes
the tag from ``meta.json``, and only checkpoints Ray Train registered (``ray.train.get_checkpoint``)
are ever loaded, because DeepSpeed's loader unpickles.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from aime.checkpoints import IncompleteCheckpointError, complete_checkpoints, read_meta, write_model_files
from aime.config import Config, dump_yaml


def save_checkpoint(
    engine: Any,
    cfg: Config,
    step: int,
    directory: Path,
    client_state: dict[str, Any],
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Collective: every rank calls it with its own local ``directory``. ``metrics`` (the periodic
    evaluation's scores) go into meta.json, where ``aime.checkpoints.best_checkpoint`` reads them."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    tag = f"step{step:08d}"
    engine.save_checkpoint(str(directory / "deepspeed"), tag=tag, client_state=client_state | {"step": step})
    state = consolidated_state_dict(engine)  # collective under ZeRO-3
    if rank == 0:
        write_model_files(directory, state, dump_yaml(cfg), step=step, tag=tag, metrics=metrics)


log = logging.getLogger(__name__)

# Ray Train's record of the checkpoints it registered, in each run's storage folder (checkpoints/<name>/).
RAY_TRAIN_SNAPSHOT = "checkpoint_manager_snapshot.json"


def resumable_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of ``run_dir`` that is complete and that Ray Train registered, or None.

    DeepSpeed's loader unpickles, so only what this run's own Ray Train recorded is ever resumed from;
    complete checkpoints it did not register (copied in, or saved when the run died) are skipped with a
    warning naming them.
    """
    registered = registered_checkpoints(run_dir)
    chosen = None
    for checkpoint in complete_checkpoints(run_dir):
        if checkpoint.resolve() in registered:
            chosen = checkpoint
        else:
            log.warning("checkpoint %s was not registered by Ray Train: not resumed from", checkpoint)
    return chosen


def resume_location(run_dir: str | Path) -> str | None:
    """Where a (re)started run continues from, as its workers read it: ``resumable_checkpoint`` of
    ``run_dir``, or None. For a staging copy of a run on shared storage (``aime/storage/mirror.py``)
    the run's checkpoint records are pulled first and the answer is the checkpoint's URI."""
    from aime.storage.mirror import pull, remote_of

    remote = remote_of(run_dir)
    if remote is not None:
        pull(remote)  # into run_dir, the same staging folder: meta and model files, no DeepSpeed states
    found = resumable_checkpoint(run_dir)
    if found is None:
        return None
    return f"{remote}/{found.relative_to(run_dir).as_posix()}" if remote else str(found)


def registered_checkpoints(run_dir: str | Path) -> set[Path]:
    """The checkpoint folders Ray Train's snapshots list (unreadable snapshots list nothing)."""
    found: set[Path] = set()
    for snapshot in Path(run_dir, "checkpoints").glob(f"*/{RAY_TRAIN_SNAPSHOT}"):
        try:
            results = json.loads(snapshot.read_text()).get("checkpoint_results", [])
            names = [str(r["checkpoint_dir_name"]) for r in results]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            log.warning("%s is unreadable (%s): its checkpoints are not resumed from", snapshot, error)
            continue
        found |= {(snapshot.parent / name).resolve() for name in names if "/" not in name and name != ".."}
    return found


def consolidated_state_dict(engine: Any) -> dict[str, torch.Tensor]:
    """Full model weights on rank 0, whatever the ZeRO stage."""
    if engine.zero_optimization_stage() == 3:
        return engine._zero3_consolidated_16bit_state_dict() or {}
    return engine.module.state_dict()


def load_engine_state(engine: Any, directory: Path) -> dict[str, Any]:
    """Restore model, optimizer and scheduler; returns the client state (step, balancer, ...)."""
    meta = read_meta(directory)
    _, client_state = engine.load_checkpoint(
        str(Path(directory) / "deepspeed"),
        tag=meta["tag"],
        load_optimizer_states=True,
        load_lr_scheduler_states=True,
    )
    if client_state is None:
        raise IncompleteCheckpointError(f"{directory}: DeepSpeed found no state under tag {meta['tag']}")
    return client_state
