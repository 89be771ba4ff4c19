"""Checkpoints, the one door: find a run's best or newest complete checkpoint, read its config, load
its world model. Training writes them (``aime.train.checkpoint``); evaluation, serving, lenses and
tuning read them only through here, with no DeepSpeed and no Ray.

    aime.checkpoints.resolve(run_dir | checkpoint)        -> the checkpoint directory (best, else newest)
    aime.checkpoints.load(run_dir | checkpoint, device)   -> Loaded(path, step, config, model)
"""

from aime.checkpoints.layout import (
    CONFIG,
    META,
    WEIGHTS,
    IncompleteCheckpointError,
    best_checkpoint,
    checkpoint_step,
    complete_checkpoints,
    config_hash,
    is_complete,
    latest_checkpoint,
    read_meta,
    resolve,
    run_dir_of,
    write_model_files,
)
from aime.checkpoints.load import Loaded, checkpoint_config, load, load_world_model

__all__ = [
    "CONFIG",
    "META",
    "WEIGHTS",
    "IncompleteCheckpointError",
    "Loaded",
    "best_checkpoint",
    "checkpoint_config",
    "checkpoint_step",
    "complete_checkpoints",
    "config_hash",
    "is_complete",
    "latest_checkpoint",
    "load",
    "load_world_model",
    "read_meta",
    "resolve",
    "run_dir_of",
    "write_model_files",
]
