"""The Ray Train worker of ``aime lenses train``: one process per GPU (or CPU slot) training the bank on
its shard of the training rows.

    get_dataset_shard("train") --pyarrow batches--> this worker's rows, in memory (activations are small)
    get_dataset_shard("validation") --> every row (not split: all workers make the same stop decisions)
    fit_bank(..., average_gradients=all-reduce mean) --> rank 0 reports lenses.safetensors as the checkpoint

Every worker starts from the same seed (the same initial bank) and takes the same number of steps per
epoch (the largest shard's), so the all-reduces pair up and the weights stay identical across ranks.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aime.lenses.activations import to_lens_data
from aime.lenses.bank import LensBank, LensSpec
from aime.lenses.fit import FitConfig, LensData, fit_bank

CHECKPOINT_WEIGHTS = "lenses.safetensors"
CHECKPOINT_RESULT = "fit.json"


def train_lenses_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    specs = [LensSpec(**s) for s in loop_config["specs"]]
    cfg = FitConfig(**loop_config["fit"])
    activations, concepts = loop_config["activations"], loop_config["concepts"]
    train = _materialise(ray.train.get_dataset_shard("train"), activations, concepts).to(device)
    validation = _materialise(ray.train.get_dataset_shard("validation"), activations, concepts).to(device)
    largest = _all_reduce(torch.tensor(float(len(train)), device=device), "max", world)
    steps = max(1, -(-int(largest.item()) // cfg.batch_size))
    torch.manual_seed(cfg.seed)  # the same initial bank on every rank
    bank = LensBank(specs, dropout=cfg.dropout).to(device)
    positive = torch.tensor(loop_config["positive_fraction"], dtype=torch.float32)
    result = fit_bank(
        bank,
        train,
        validation,
        cfg,
        positive,
        steps_per_epoch=steps,
        rank=rank,
        average_gradients=lambda grads: _average(grads, world),
    )
    metrics = {"epochs": result.epochs_run, "train_rows": len(train), "steps_per_epoch": steps}
    if rank != 0:
        ray.train.report(metrics)
        return
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as directory:
        state = {k: v.detach().float().contiguous().cpu() for k, v in bank.state_dict().items()}
        save_file(state, str(Path(directory) / CHECKPOINT_WEIGHTS))
        (Path(directory) / CHECKPOINT_RESULT).write_text(json.dumps(asdict(result)))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def _materialise(shard: Any, activations: list[str], concepts: list[str]) -> LensData:
    parts = [
        to_lens_data(b, activations, concepts)
        for b in shard.iter_batches(batch_size=8192, batch_format="pyarrow")
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("a lens worker received no rows: fewer rows than workers? lower --workers")
    return LensData(
        {a: torch.cat([p.activations[a] for p in parts]) for a in activations},
        torch.cat([p.concepts for p in parts]),
        list(concepts),
    )


def _average(grads: Sequence[Tensor], world: int) -> None:
    """Mean of every gradient over the workers: one flat all-reduce."""
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _all_reduce(value: Tensor, op: str, world: int) -> Tensor:
    if world > 1:
        torch.distributed.all_reduce(
            value, op=torch.distributed.ReduceOp.MAX if op == "max" else torch.distributed.ReduceOp.SUM
        )
    return value
