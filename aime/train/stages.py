"""Training stages of ``aime train``: what a run optimises and which components it freezes.

    train.stage=tokenizer      only perception.tokenizer learns, on its own objective (pixel
                               reconstruction MSE + VQ commitment); everything else is frozen
    train.stage=world_model    the whole model on its losses; with train.tokenizer_checkpoint the
                               tokenizer's weights come from that checkpoint and stay frozen

Both stages checkpoint a whole ``WorldModel`` (``model.safetensors``), so a tokenizer checkpoint is
read like any other: ``load_tokenizer`` takes its ``perception.tokenizer.*`` weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from aime.checkpoints import WEIGHTS, IncompleteCheckpointError, resolve
from aime.config import Config
from aime.models.outputs import LossOutput
from aime.models.world_model import WorldModel

TOKENIZER = "perception.tokenizer"


def check_stage(cfg: Config) -> None:
    """Stage problems, reported on the driver before any worker starts."""
    t = cfg.train
    if t.stage == "tokenizer":
        if not cfg.model.perception.enabled:
            raise ValueError(
                "train.stage=tokenizer needs model.perception.enabled=true (it trains its tokenizer)"
            )
        if t.zero_stage == 3:
            raise ValueError("train.stage=tokenizer runs with train.zero_stage <= 2 (its model is small)")
        if t.tokenizer_checkpoint:
            raise ValueError(
                "train.tokenizer_checkpoint is for train.stage=world_model; unset it for the tokenizer stage"
            )
    if t.tokenizer_checkpoint:
        if not cfg.model.perception.enabled:
            raise ValueError("train.tokenizer_checkpoint needs model.perception.enabled=true")
        resolve_tokenizer_checkpoint(t.tokenizer_checkpoint)


def resolve_tokenizer_checkpoint(path: str) -> Path:
    """A complete checkpoint directory, given one or a run directory (its newest checkpoint)."""
    try:
        return resolve(path, prefer="newest")  # a tokenizer run has no periodic eval to pick the best by
    except IncompleteCheckpointError as error:
        raise ValueError(
            f"train.tokenizer_checkpoint={path}: {error}; run `aime train ... train.stage=tokenizer` first "
            "and pass its run directory"
        ) from None


def prepare_model(model: WorldModel, cfg: Config) -> None:
    """Freeze and load what the stage asks for; call before building the optimizer (frozen parameters
    get no optimizer state) and on every rank, so the ranks start identical."""
    t = cfg.train
    if t.stage == "tokenizer":
        assert model.perception is not None
        for name in model.components():
            if name != "perception":
                model.freeze(name)
        for name, _ in model.perception.named_children():
            if f"perception.{name}" != TOKENIZER:
                model.freeze(f"perception.{name}")
    elif t.tokenizer_checkpoint:
        load_tokenizer(model, resolve_tokenizer_checkpoint(t.tokenizer_checkpoint))
        model.freeze(TOKENIZER)


def load_tokenizer(model: WorldModel, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    prefix = TOKENIZER + "."
    weights = {
        k.removeprefix(prefix): v
        for k, v in load_file(str(checkpoint / WEIGHTS)).items()
        if k.startswith(prefix)
    }
    tokenizer = model.component(TOKENIZER)
    try:
        tokenizer.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(
            f"the tokenizer in {checkpoint} does not fit this model's (model.perception settings differ "
            f"from the tokenizer run's): {error}"
        ) from error


def stage_losses(
    model: WorldModel, engine: torch.nn.Module, batch: dict[str, Tensor], stage: str
) -> LossOutput:
    """The stage's losses on one micro-batch: obs uint8 (B, T, 3, S, S), action (B, T, A), is_first (B, T)."""
    if stage == "world_model":
        output = engine(batch["obs"], batch["action"], batch["is_first"])
        return model.losses(output, batch)
    assert model.perception is not None
    frames = batch["obs"].float() / 127.5 - 1.0  # (B, T, 3, S, S) in [-1, 1]
    loss, metrics = model.perception.tokenizer.pretrain_loss(frames)
    return LossOutput(
        total=loss,
        tasks={"tokenizer": loss},
        components={"tokenizer/recon": metrics["tokenizer/recon"], "tokenizer/vq": metrics["tokenizer/vq"]},
        metrics={"tokenizer/perplexity": metrics["tokenizer/perplexity"]},
    )
