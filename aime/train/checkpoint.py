"""Training checkpoints: DeepSpeed state for resuming, consolidated weights for everything else.

A checkpoint directory holds

    deepspeed/<tag>/...     the engine's state: model, optimizer, scheduler (sharded under ZeRO)
    model.safetensors       consolidated fp32 weights: evaluation and serving never need DeepSpeed
    config.yaml             the run's resolved config
    meta.json               {"step", "tag", ...}: written last, so its presence marks a complete save

Loading never follows DeepSpeed's ``latest`` file (it can name a save that did not finish): it takes
the tag from ``meta.json``, and only checkpoints Ray Train registered (``ray.train.get_checkpoint``)
are ever loaded, because DeepSpeed's loader unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from aime.config import Config, dump_yaml
from aime.config.loader import _read_yaml, build

META = "meta.json"
WEIGHTS = "model.safetensors"


class IncompleteCheckpointError(RuntimeError):
    pass


def save_checkpoint(
    engine: Any, cfg: Config, step: int, directory: Path, client_state: dict[str, Any]
) -> None:
    """Collective: every rank calls it with its own local ``directory``."""
    import torch.distributed as dist
    from safetensors.torch import save_file

    rank = dist.get_rank() if dist.is_initialized() else 0
    tag = f"step{step:08d}"
    engine.save_checkpoint(str(directory / "deepspeed"), tag=tag, client_state=client_state | {"step": step})
    state = consolidated_state_dict(engine)  # collective under ZeRO-3
    if rank == 0:
        save_file(
            {k: v.detach().float().contiguous().cpu() for k, v in state.items()}, str(directory / WEIGHTS)
        )
        (directory / "config.yaml").write_text(dump_yaml(cfg))
        (directory / META).write_text(json.dumps({"step": step, "tag": tag, "format": 1}) + "\n")


def consolidated_state_dict(engine: Any) -> dict[str, torch.Tensor]:
    """Full model weights on rank 0, whatever the ZeRO stage."""
    if engine.zero_optimization_stage() == 3:
        return engine._zero3_consolidated_16bit_state_dict() or {}
    return engine.module.state_dict()


def read_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.exists():
        raise IncompleteCheckpointError(f"{directory} has no {META}: the save did not complete")
    return json.loads(path.read_text())


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


def load_world_model(directory: str | Path) -> Any:
    """A WorldModel with the checkpoint's consolidated weights; no DeepSpeed, no Ray."""
    from safetensors.torch import load_file

    from aime.models.world_model import WorldModel

    directory = Path(directory)
    read_meta(directory)
    cfg = build(Config, _read_yaml(directory / "config.yaml"))
    model = WorldModel(cfg.model)
    model.load_state_dict(load_file(str(directory / WEIGHTS)))
    return model


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run whose save completed (it has meta.json), or None."""
    complete = [p.parent for p in Path(run_dir, "checkpoints").glob("*/step*/" + META)]
    return max(complete, key=lambda p: read_meta(p)["step"], default=None)
