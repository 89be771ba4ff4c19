"""Loading a checkpoint: its config, rebuilt one way, and its world model from safetensors alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from aime.checkpoints.layout import CONFIG, WEIGHTS, read_meta, resolve
from aime.config import Config
from aime.config.loader import build, read_yaml

if TYPE_CHECKING:
    from aime.models.world_model import WorldModel


@dataclass(frozen=True)
class Loaded:
    path: Path  # the checkpoint directory
    step: int
    config: Config
    model: WorldModel  # in eval mode, on the requested device


def checkpoint_config(checkpoint: str | Path) -> Config:
    """The run's resolved config as saved with the checkpoint. Keys are checked against today's
    schema; a key added since the save takes its dataclass default (the saved file is complete, so
    presets are not merged in again: what the run used is what comes back)."""
    return build(Config, read_yaml(Path(checkpoint) / CONFIG))


def load_world_model(checkpoint: str | Path, cfg: Config | None = None) -> WorldModel:
    """A WorldModel with the checkpoint's consolidated weights, on the CPU, in train mode."""
    from safetensors.torch import load_file

    from aime.models.world_model import WorldModel

    checkpoint = Path(checkpoint)
    read_meta(checkpoint)  # complete saves only
    model = WorldModel((cfg or checkpoint_config(checkpoint)).model)
    model.load_state_dict(load_file(str(checkpoint / WEIGHTS)))  # safetensors: nothing is unpickled
    return model


def load(
    path: str | Path,
    device: str | torch.device = "cpu",
    prefer: Literal["best", "newest"] = "best",
) -> Loaded:
    """Everything a consumer of a trained model needs, from a checkpoint or a run directory."""
    checkpoint = resolve(path, prefer)
    cfg = checkpoint_config(checkpoint)
    model = load_world_model(checkpoint, cfg).to(device).eval()
    return Loaded(path=checkpoint, step=int(read_meta(checkpoint)["step"]), config=cfg, model=model)
