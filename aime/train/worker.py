"""The Ray Train worker: one process per GPU (or CPU slot) training the world model with DeepSpeed.

DeepSpeed is imported here, inside the worker, never in the driver: importing it at module level
can crash a CPU-only Train controller. The model math (aime.models) receives its collectives as
injected functions; everything distributed lives in this file and ``distributed.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from aime.config import Config, build
from aime.run.seeding import derive_seed
from aime.train.checkpoint import load_engine_state, save_checkpoint
from aime.train.deepspeed_config import deepspeed_config, resolve_bf16
from aime.train.distributed import all_reduce_mean
from aime.train.schedule import warmup_cosine


def train_worker(loop_config: dict[str, Any]) -> None:
    import deepspeed
    import ray.train
    import ray.train.torch

    from aime.models.balancing.balancer import GradientBalancer
    from aime.models.world_model import WorldModel

    cfg = build(Config, loop_config["config"])
    t = cfg.train
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    on_gpu = device.type == "cuda"

    torch.manual_seed(derive_seed(cfg.seed, "model"))  # the same initial weights on every rank
    model = WorldModel(cfg.model, reduce=all_reduce_mean).to(device)
    balancer = GradientBalancer(cfg.model.optim.balancing, reduce=all_reduce_mean)
    optimizer = torch.optim.AdamW(
        model.param_groups(cfg.model.optim.lr), betas=t.adam_betas, weight_decay=t.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(
            step, warmup_steps=t.warmup_steps, total_steps=t.steps, min_lr_ratio=t.min_lr_ratio
        ),
    )
    bf16 = resolve_bf16(t, on_gpu)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule,
        config=deepspeed_config(t, grad_clip=cfg.model.optim.grad_clip, world_size=world, bf16=bf16),
    )

    step = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and loop_config.get("resume_from"):
        checkpoint = ray.train.Checkpoint.from_directory(loop_config["resume_from"])
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_engine_state(engine, Path(directory))
        step = int(state["step"])
        if state.get("balancer") is not None:
            balancer.load_state_dict(state["balancer"])

    batches = iter(
        ray.train.get_dataset_shard("replay").iter_torch_batches(
            batch_size=t.batch_size, prefetch_batches=t.prefetch_batches, drop_last=True
        )
    )
    params = [p for p in engine.module.parameters() if p.requires_grad]
    wait = busy = 0.0
    since_log = 0
    while step < t.steps:
        started = time.perf_counter()
        if t.inject_failure_at_step == step + 1 and rank == world - 1:
            _fail_once(Path(loop_config["run_dir"]), step + 1)
        for _ in range(t.grad_accum):
            fetched = time.perf_counter()
            batch = next(batches)
            wait += time.perf_counter() - fetched
            model_batch = {
                "obs": batch["pixels"].to(device, non_blocking=True),
                "action": batch["action"].to(device, non_blocking=True),
                "is_first": batch["is_first"].to(device, non_blocking=True),
            }
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                output = engine(model_batch["obs"], model_batch["action"], model_batch["is_first"])
                losses = engine.module.losses(output, model_batch)
            balanced = balancer(losses.tasks, params)
            engine.backward(balanced.loss)
            engine.step()
        step += 1
        since_log += 1
        busy += time.perf_counter() - started
        last = step == t.steps
        metrics: dict[str, float] = {"step": step}
        if step % t.log_every == 0 or last:
            samples = since_log * t.grad_accum * t.batch_size * world
            metrics |= _metrics(losses, balanced.stats, optimizer, engine, wait, busy, samples)
            wait = busy = 0.0
            since_log = 0
        if step % t.checkpoint_every == 0 or last:
            directory = Path(tempfile.mkdtemp(prefix=f"aime-ckpt-{rank}-"))
            save_checkpoint(engine, cfg, step, directory, {"balancer": balancer.state_dict()})
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(str(directory)),
                checkpoint_dir_name=f"step{step:08d}",
            )
        elif len(metrics) > 1:
            ray.train.report(metrics)


class InjectedFailure(RuntimeError):
    pass


def _fail_once(run_dir: Path, step: int) -> None:
    marker = run_dir / ".injected-failure"
    if marker.exists():
        return
    marker.write_text(f"step {step}\n")
    raise InjectedFailure(f"injected failure at step {step} (train.inject_failure_at_step)")


def _metrics(
    losses: Any,
    stats: dict[str, torch.Tensor],
    optimizer: Any,
    engine: Any,
    wait: float,
    busy: float,
    samples: int,
) -> dict[str, float]:
    out = {"train/total": float(losses.total)}
    out |= {f"train/task/{k}": float(v) for k, v in losses.tasks.items()}
    out |= {f"train/{k}": float(v) for k, v in losses.components.items()}
    out |= {f"train/{k}": float(v) for k, v in losses.metrics.items()}
    out |= {f"train/{k}": float(v) for k, v in stats.items()}
    out |= {f"train/lr/{g.get('name', i)}": g["lr"] for i, g in enumerate(optimizer.param_groups)}
    grad_norm = engine.get_global_grad_norm()
    if grad_norm is not None:
        out["train/grad_norm"] = float(grad_norm)
    out["train/data_wait_fraction"] = wait / busy if busy else 0.0
    out["train/samples_per_second"] = samples / busy if busy else 0.0
    if torch.cuda.is_available():
        out["train/gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out
