"""The bare side of ``train_overhead.py``: the Ray Train worker's step as a plain PyTorch loop in one
process, on the same windows in the same order, preloaded in memory, and its step-time figures."""

from __future__ import annotations

import time

import numpy as np
import torch

from aime.config import Config
from aime.replay.buffer import TRAINING_COLUMNS
from aime.replay.dataset import batch_window_ids
from aime.replay.sampler import WindowSampler
from aime.replay.split import HeldOutSplit
from aime.run.seeding import derive_seed


# ---- (bare) ----------------------------------------------------------------------------------
def preload_batches(cfg: Config, count: int) -> tuple[list[dict[str, torch.Tensor]], float]:
    """``count`` batches of the windows the worker streams (rank 0 of 1: ``batch_window_ids``), from
    the same seed and held-out split as ``aime.train.worker``; returns them and the ms per batch."""
    t = cfg.train
    ids = batch_window_ids(first_batch=0, num_batches=count, batch_size=t.batch_size).reshape(count, -1)
    sampler = WindowSampler(
        cfg.replay.root or "",
        t.seq_len,
        seed=derive_seed(cfg.seed, "replay"),
        capacity_steps=cfg.replay.capacity_steps,
        refresh_seconds=cfg.replay.refresh_seconds,
        episode_filter=HeldOutSplit.of(cfg).training_files,
        columns=TRAINING_COLUMNS,  # what the worker's stream reads
    )
    sampler.refresh(force=True)
    batches, seconds = [], 0.0
    for i in range(count):
        begin = time.perf_counter()
        windows = sampler.sample(ids[i])
        batch = {
            "obs": torch.from_numpy(windows["pixels"]),
            "action": torch.from_numpy(windows["action"]),
            "is_first": torch.from_numpy(windows["is_first"]),
        }
        seconds += time.perf_counter() - begin
        batches.append(batch)
    return batches, 1e3 * seconds / count


def bare_loop(cfg: Config, batches: list[dict[str, torch.Tensor]], device: torch.device) -> dict:
    """The worker's step without Ray or DeepSpeed: same model, balancer, optimizer, schedule, clip
    and per-step seed (``aime/train/worker.py``, stage ``world_model``)."""
    from aime.models.balancing.balancer import GradientBalancer
    from aime.models.world_model import WorldModel
    from aime.train.deepspeed_config import resolve_bf16
    from aime.train.distributed import all_reduce_mean
    from aime.train.schedule import build_optimizer

    t = cfg.train
    torch.manual_seed(derive_seed(cfg.seed, "model"))  # the worker's initial weights
    model = WorldModel(cfg.model, reduce=all_reduce_mean).to(device)
    balancer = GradientBalancer(cfg.model.optim.balancing, reduce=all_reduce_mean)
    optimizer, schedule = build_optimizer(model, cfg)
    bf16 = resolve_bf16(t, device.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    step_seconds, logged = [], {}
    for step in range(t.steps):
        if device.type == "cuda":  # nothing queued before the clock starts (the model's copy, at step 0)
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        torch.manual_seed(derive_seed(cfg.seed, "step", step, 0))  # the worker's per-step seed (rank 0)
        batch = {k: v.to(device, non_blocking=True) for k, v in batches[step].items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            output = model(batch["obs"], batch["action"], batch["is_first"])
            losses = model.losses(output, batch)
        balancer(losses.tasks, params).loss.backward()
        if cfg.model.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.model.optim.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step_seconds.append(time.perf_counter() - started)
        if (step + 1) % t.log_every == 0 or step + 1 == t.steps:  # as the worker logs, outside the timing
            logged[step + 1] = float(losses.total.detach())
    return {"step_seconds": step_seconds, "final_loss": float(losses.total.detach()), "losses": logged}


# ---- (bare) figures --------------------------------------------------------------------------
def bare_figures(runs: list[dict], skip: int, log_every: int, batch_size: int) -> dict:
    """Steady-state means per run and over the runs, and the step time of every interval of
    ``log_every`` steps (the Ray side's reporting grain), whose median resists bursts of load."""
    run_means = [float(np.mean(r["step_seconds"][skip:])) for r in runs]
    step_s = float(np.mean(run_means))
    intervals = [
        [
            round(1e3 * float(np.mean(r["step_seconds"][i : i + log_every])), 2)
            for i in range(0, len(r["step_seconds"]), log_every)
        ]
        for r in runs
    ]
    kept = [ms for run in intervals for ms in run[skip // log_every :]]
    return {
        "step_ms": round(1e3 * step_s, 2),
        "samples_per_second": round(batch_size / step_s, 2),
        "step_ms_median_interval": round(float(np.median(kept)), 2),
        "step_ms_min_interval": round(float(np.min(kept)), 2),
        "runs_step_ms": [round(1e3 * s, 2) for s in run_means],
        "intervals_step_ms": intervals,
        "data": "preloaded in memory",
    }
