"""Training-framework overhead: a bare PyTorch loop vs one Ray Train worker with DeepSpeed ZeRO-0, in
one run (prints one JSON object and writes it to ``benchmarks/results/train_overhead.json``).

    python benchmarks/train_overhead.py                       # tiny model, B=8, T=16, 80 steps
    python benchmarks/train_overhead.py --steps 30 --bare-runs 1 --out ''   # a quick check

Both sides train the same world model (``--experiment``, the tiny one by default, with its
configured gradient balancing unless ``--balancing`` says otherwise) from the same initial weights,
on the same windows of the same synthetic replay store (``aime/replay/synthetic.py``), with the same
batch (B, T), number of steps, AdamW parameter groups, warm-up + cosine lr schedule and gradient
clipping:

(bare)  a plain loop in this process: the worker's per-step seed, forward, losses,
        ``GradientBalancer``, backward, ``clip_grad_norm_``, ``optimizer.step``, ``schedule.step``.
        Its batches are drawn up front by an in-process ``WindowSampler`` (the windows the worker's
        stream yields, in its order: sampling is a pure function of seed and window id, and the ids
        come from ``batch_window_ids``) and held in memory, so the loop pays no data cost at all;
        ``sampler_ms_per_batch`` is what reading them in-line would have added. It runs with as
        many torch threads as a Ray worker of ``train.cpus_per_worker`` CPUs gets (probed, not
        assumed: Ray sets ``OMP_NUM_THREADS`` from the CPUs it assigns), ``--bare-runs`` times,
        alternating around the Ray run (before, after, ...) so slow drift on a shared machine
        falls on both sides; the mean of the runs is the figure.
(ray_train_zero0)  the real ``aime train`` path, ``aime.train.driver.train`` with
        ``train.num_workers=1`` and ``train.zero_stage=0``: a TorchTrainer worker streaming its
        batches from ``ReplayBuffer.dataset`` (Ray Data, sampler actors, the window ids in a fixed
        order) into a DeepSpeed engine. Its figures come from the worker's own
        metrics in ``<run_dir>/metrics.jsonl``: every ``--log-every`` steps it reports
        ``train/samples_per_second`` (samples over the time spent in its step loop, data wait
        included, ``ray.train.report`` excluded) and ``train/data_wait_fraction`` (time blocked in
        ``next(batches)`` over that same time); intervals are weighted by their time.

Steady state: the first ``--warmup-intervals`` log intervals (``warmup_steps_excluded`` steps) are
left out on both sides (engine and stream start-up, first allocations). Only the final step writes a
checkpoint (``train.checkpoint_every = steps``), and the checkpoint is outside the timed loop.
``report_interval_step_ms`` is a coarse cross-check that does include ``ray.train.report``: the spacing
of the metric records' wall-clock stamps, which Ray Train's controller takes when it polls the
worker (every 2 s by default), so it is only good to about 2 s over the whole timed span.

``step_time_ratio`` is Ray's steady-state mean step time over the bare loop's (target <= 1.05);
``step_time_ratio_median_interval`` and ``step_time_ratio_min_interval`` take each side's median and
fastest log interval instead, which bursts of load from other processes on a shared machine move
less (``machine.load_average_1m`` shows them). ``final_loss_relative_difference`` and
``loss_relative_difference_by_step`` check that both sides did the same work: the same initial
weights, windows in the same order, per-step seeds and schedule give the same losses up to float
rounding (DeepSpeed clips and steps in its own code), which stays near 1e-5 for the first ~30 steps
and then wanders around 1e-3..1e-2 as the tiny model's trajectories amplify it; a difference of
percents already at the first log step means the worker's step and this loop have drifted apart
(update ``bare_loop``).

On a machine shared with other work the step times move by tens of percent from minute to minute
(``machine.load_average_1m`` records the load after each phase): read the ratio against the spread of
``bare.runs_step_ms`` and, where they disagree, prefer ``step_time_ratio_median_interval``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from targets import check  # noqa: E402
from train_overhead_bare import bare_figures, bare_loop, preload_batches  # noqa: E402

from aime.config import Config, load_config  # noqa: E402
from aime.replay.synthetic import write_synthetic_episodes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train_overhead.json"
CONTROLLER_POLL_S = 2.0  # Ray Train v2's default health-check (report polling) interval


# ---- the config ------------------------------------------------------------------------------
def make_config(args: argparse.Namespace, workdir: str, replay: str) -> Config:
    overrides = [
        f"results_dir={os.path.join(workdir, 'results')}",
        f"replay.root={replay}",
        f"seed={args.seed}",
        f"train.batch_size={args.batch_size}",
        f"train.seq_len={args.seq_len}",
        f"train.steps={args.steps}",
        f"train.log_every={args.log_every}",
        f"train.checkpoint_every={args.steps}",
        "train.num_workers=1",
        "train.zero_stage=0",
        "train.grad_accum=1",
        "train.wandb=false",
        f"train.cpus_per_worker={args.cpus_per_worker}",
        f"ray.num_cpus={args.ray_cpus}",
    ]
    if args.balancing:
        overrides.append(f"model.optim.balancing.mode={args.balancing}")
    cfg = load_config(Config, args.experiment, [*overrides, *args.overrides])
    if cfg.train.stage != "world_model" or cfg.train.tokenizer_checkpoint:
        raise SystemExit("the bare loop mirrors train.stage=world_model without train.tokenizer_checkpoint")
    return cfg


# ---- the threads a Ray worker gets -----------------------------------------------------------
def ray_worker_threads(cpus: float) -> dict:
    """What torch in a Ray actor holding ``cpus`` CPUs runs with (a Ray Train worker is such an
    actor: Ray sets its OMP_NUM_THREADS from the CPUs assigned, before user code imports torch)."""
    import ray

    @ray.remote(num_cpus=cpus)
    class Probe:
        def threads(self) -> dict:
            return {
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "torch_threads": torch.get_num_threads(),
            }

    probe = Probe.remote()  # type: ignore[attr-defined]
    try:
        return ray.get(probe.threads.remote(), timeout=120)
    finally:
        ray.kill(probe)


# ---- (ray_train_zero0) -----------------------------------------------------------------------
def ray_train(cfg: Config) -> tuple[list[dict], float, Path]:
    from aime.run.rundir import create_run_dir
    from aime.train.driver import train

    cfg, run_dir = create_run_dir(cfg)
    begin = time.perf_counter()
    train(cfg, run_dir, progress=False)
    seconds = time.perf_counter() - begin
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if "train/samples_per_second" in r]
    return records, seconds, run_dir


def ray_figures(records: list[dict], cfg: Config, warmup_intervals: int) -> dict:
    """The worker's steady-state figures over the same steps the bare loop times: every record after
    step ``warmup_intervals * log_every``. Skipped by step, not by record: the first step has a record
    of its own (its start-up figures), which would otherwise count as a whole warm-up interval."""
    t = cfg.train
    warmup_steps = warmup_intervals * t.log_every
    per_step_samples = t.batch_size * t.grad_accum * t.num_workers
    busy = wait = 0.0
    all_busy = all_wait = 0.0
    steps = 0
    previous = 0
    intervals, kept_ms = [], []
    for record in records:
        interval_steps = record["step"] - previous
        previous = record["step"]
        seconds = interval_steps * per_step_samples / record["train/samples_per_second"]
        intervals.append(
            {
                "step": record["step"],
                "step_ms": round(1e3 * seconds / interval_steps, 2),
                "data_wait_fraction": round(record["train/data_wait_fraction"], 4),
            }
        )
        all_busy += seconds
        all_wait += record["train/data_wait_fraction"] * seconds
        if record["step"] <= warmup_steps:
            continue
        busy += seconds
        wait += record["train/data_wait_fraction"] * seconds
        steps += interval_steps
        kept_ms.append(1e3 * seconds / interval_steps)
    assert steps > 0, f"no log interval after step {warmup_steps}: raise --steps"
    step_s = busy / steps
    # Report-to-report wall time, from the record that ends the warm-up up to the last record
    # without a checkpoint (the final one's stamp also covers the checkpoint's save).
    plain = [r for r in records if "train/checkpoint" not in r]
    warm = [r for r in records if r["step"] <= warmup_steps]
    first = warm[-1] if warm else None
    report_step_ms = None
    if first is not None and plain and plain[-1]["step"] > first["step"]:
        span = plain[-1]["time"] - first["time"]
        report_step_ms = round(1e3 * span / (plain[-1]["step"] - first["step"]), 2)
    return {
        "step_ms": round(1e3 * step_s, 2),
        "samples_per_second": round(t.batch_size / step_s, 2),
        "step_ms_median_interval": round(float(np.median(kept_ms)), 2),
        "step_ms_min_interval": round(float(np.min(kept_ms)), 2),
        "data_wait_fraction": round(wait / busy, 4),
        "data_wait_ms_per_step": round(1e3 * wait / steps, 2),
        # The whole run, the warm-up intervals (stream start-up, the first blocks) included.
        "data_wait_fraction_including_warmup": round(all_wait / all_busy, 4),
        "compute_step_ms": round(1e3 * (busy - wait) / steps, 2),
        "steps_timed": steps,
        "report_interval_step_ms": report_step_ms,
        "report_time_resolution_s": CONTROLLER_POLL_S,
        "final_loss": records[-1].get("train/total"),
        "intervals": intervals,
    }


# ---- the run ---------------------------------------------------------------------------------
def _relative(x: float, reference: float) -> float:
    return float(f"{abs(x - reference) / max(abs(reference), 1e-12):.3g}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="tiny", help="a cluster/configs/experiment name or a yaml path")
    p.add_argument("--batch-size", type=int, default=8, help="B: windows per batch")
    p.add_argument("--seq-len", type=int, default=16, help="T: steps per window")
    p.add_argument("--steps", type=int, default=80, help="optimizer steps on each side")
    p.add_argument("--log-every", type=int, default=10, help="train.log_every: the Ray side's interval")
    p.add_argument("--warmup-intervals", type=int, default=1, help="log intervals left out on both sides")
    p.add_argument("--balancing", default=None, help="rgb or sum (default: the experiment's)")
    p.add_argument("--bare-runs", type=int, default=2, help="bare runs, alternating around the Ray run")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="train.cpus_per_worker")
    p.add_argument("--ray-cpus", type=int, default=2, help="ray.num_cpus: the worker's and the sampler's")
    p.add_argument("--episodes", type=int, default=20, help="synthetic episodes in the store")
    p.add_argument("--episode-steps", type=int, default=501, help="rows per synthetic episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS), help="where the JSON goes too ('' for nowhere)")
    p.add_argument("overrides", nargs="*", help="further config overrides, key=value")
    args = p.parse_args()
    if args.steps < (args.warmup_intervals + 1) * args.log_every:
        p.error("--steps must leave at least one log interval after the warm-up intervals")
    if args.bare_runs < 1:
        p.error("--bare-runs must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    load = {"start": os.getloadavg()[0]}
    workdir = tempfile.mkdtemp(prefix="aime-train-overhead-", dir="/tmp")
    replay = os.path.join(workdir, "replay")
    cfg = make_config(args, workdir, replay)
    t = cfg.train
    write_synthetic_episodes(
        replay,
        args.episodes,
        length=args.episode_steps,
        image_size=cfg.model.image_size,
        action_dim=cfg.model.action_dim,
        row_group_steps=cfg.replay.row_group_steps,
        compression=cfg.replay.compression,
    )

    import psutil
    import ray

    from aime.run.ray_init import init_ray
    from aime.run.rundir import versions
    from aime.train.deepspeed_config import resolve_bf16

    driver_threads = torch.get_num_threads()
    init_ray(cfg.ray)
    try:
        worker = ray_worker_threads(t.cpus_per_worker)
        use_gpu = ray.cluster_resources().get("GPU", 0) >= 1 if t.use_gpu == "auto" else bool(t.use_gpu)
        device = torch.device("cuda" if use_gpu else "cpu")
        batches, sampler_ms = preload_batches(cfg, t.steps)
        bare_runs: list[dict] = []
        ray_result = None
        torch.set_num_threads(worker["torch_threads"])
        for run in range(args.bare_runs):
            bare_runs.append(bare_loop(cfg, batches, device))
            load[f"after_bare_{run}"] = os.getloadavg()[0]
            progress = {"bare_run": run, "final_loss": bare_runs[-1]["final_loss"]}
            print(json.dumps(progress), file=sys.stderr, flush=True)  # stdout holds the result only
            if run == 0:
                torch.set_num_threads(driver_threads)
                ray_result = ray_train(cfg)
                load["after_ray"] = os.getloadavg()[0]
                torch.set_num_threads(worker["torch_threads"])
        torch.set_num_threads(driver_threads)
    finally:
        ray.shutdown()
    assert ray_result is not None
    records, ray_seconds, _ = ray_result
    shutil.rmtree(workdir, ignore_errors=True)

    skip = args.warmup_intervals * args.log_every
    bare = bare_figures(bare_runs, skip, args.log_every, t.batch_size)
    ray_side = ray_figures(records, cfg, args.warmup_intervals)
    # Both sides time steps skip+1 .. steps (before 2026-12-03 the Ray side also timed 2 .. skip).
    assert ray_side["steps_timed"] == t.steps - skip, (ray_side["steps_timed"], t.steps - skip)
    ratio = ray_side["step_ms"] / bare["step_ms"]
    bare_losses = [r["final_loss"] for r in bare_runs]
    ray_loss = ray_side["final_loss"]
    out = {
        "benchmark": "train_overhead",
        "experiment": args.experiment,
        "model": Path(args.experiment).stem if args.experiment else None,
        "image_size": cfg.model.image_size,
        "balancing": cfg.model.optim.balancing.mode,
        "batch_size": t.batch_size,
        "seq_len": t.seq_len,
        "steps": t.steps,
        "log_every": t.log_every,
        "warmup_steps_excluded": skip,
        "seed": cfg.seed,
        "device": device.type,
        "bf16": resolve_bf16(t, device.type == "cuda"),
        "threads": {
            "ray_worker_omp_num_threads": worker["omp_num_threads"],
            "ray_worker_torch_threads": worker["torch_threads"],
            "bare_torch_threads": worker["torch_threads"],
            "driver_default_torch_threads": driver_threads,
        },
        "ray": {
            "num_cpus": cfg.ray.num_cpus,
            "cpus_per_worker": t.cpus_per_worker,
            "sampler_workers": t.sampler_workers,
            "sampler_cpus": t.sampler_cpus,
            "windows_per_read": t.windows_per_read,
            "prefetch_batches": t.prefetch_batches,
        },
        "store": {"episodes": args.episodes, "episode_steps": args.episode_steps},
        "bare": bare | {"sampler_ms_per_batch": round(sampler_ms, 2), "final_loss": bare_losses},
        "ray_train_zero0": ray_side | {"seconds_end_to_end": round(ray_seconds, 1)},
        "step_time_ratio": round(ratio, 4),
        # The same ratio from the median log interval of each side: less sensitive to bursts of load
        # from other processes on a shared machine.
        "step_time_ratio_median_interval": round(
            ray_side["step_ms_median_interval"] / bare["step_ms_median_interval"], 4
        ),
        # ... and from each side's fastest log interval: the least disturbed by other processes.
        "step_time_ratio_min_interval": round(
            ray_side["step_ms_min_interval"] / bare["step_ms_min_interval"], 4
        ),
        # Same initial weights, windows, seeds, schedule and steps: the losses should agree closely
        # (a check that both sides did the same work, not a timing figure).
        "final_loss_relative_difference": (
            _relative(max(bare_losses, key=lambda x: abs(x - ray_loss)), ray_loss)
            if ray_loss is not None
            else None
        ),
        "loss_relative_difference_by_step": {
            r["step"]: _relative(bare_runs[0]["losses"][r["step"]], r["train/total"])
            for r in records
            if r["step"] in bare_runs[0]["losses"] and "train/total" in r
        },
        "targets": check(
            {
                "step_time_ratio": (round(ratio, 4), "<=", 1.05),
                "data_wait_fraction": (ray_side["data_wait_fraction"], "<", 0.05),
            }
        ),
        "versions": versions(),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "processor": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            # Other people's work on the machine: 1-minute load averages after each phase.
            "load_average_1m": {k: round(v, 2) for k, v in load.items()},
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    assert math.isfinite(ratio), out
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
