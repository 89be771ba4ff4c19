"""How large a world model ZeRO-2 and ZeRO-3 can train on N GPUs of one host (issue 17): the preset's
widths (channels and hidden sizes) are multiplied by an integer k, so its parameters grow about as k^2,
until a training step runs out of GPU memory. A small batch (B=2 per GPU) keeps the activations small,
so the model states decide. Prints one JSON object and writes benchmarks/results/zero_capacity.json.

    python benchmarks/zero_capacity.py --workers 8                     # k = 1, 2, 4, ... then bisected
    python benchmarks/zero_capacity.py --workers 8 --widths 1 16 32 48 --bisect 2
    python benchmarks/zero_capacity.py --cpu --workers 2 --preset tiny --widths 1 2 --steps 1   # a check

Each probe runs in a fresh process with its own local Ray, under a wall-clock limit (a rank that runs
out of memory inside a collective can leave the others waiting): a Ray Train run of ``--workers``
workers whose loop builds the engine with aime's ``build_engine`` (the model made on its GPU, not on the
host first: eight host copies of a model of billions of parameters would not fit) and runs ``--steps``
steps of ``train_microbatch`` on one random batch. Every rank writes its parameters, peak memory and
step times, or its out-of-memory error. Nothing is checkpointed: such a model's states would fill the
disk. ``sum`` balancing (ZeRO-3 refuses RGB) and ``compile_rollout=none`` (ZeRO-3 needs it) in both.

The arithmetic it checks (README, "Several GPUs of one host"): training keeps fp32 weights under bf16
autocast. Per GPU, ZeRO-2 holds 4 bytes a parameter whole plus 12 / N (gradient, Adam's moments),
ZeRO-3 16 / N, but the model is first built whole on each GPU (4 bytes a parameter) before DeepSpeed
partitions it. Target: ZeRO-3 trains a model >= 4x the preset's parameters at a width where ZeRO-2
ran out of memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from targets import check, only  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results" / "zero_capacity.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=8, help="Ray Train workers (GPUs)")
    p.add_argument("--stages", type=int, nargs="+", default=[2, 3], help="ZeRO stages to probe")
    p.add_argument("--preset", default="default", help="model preset (aime/configs/model)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=2, help="B per GPU")
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="training steps per probe")
    p.add_argument("--widths", type=int, nargs="+", default=None, help="k to probe (default: 1, 2, 4, ...)")
    p.add_argument("--max-width", type=int, default=128, help="doubling stops here")
    p.add_argument("--bisect", type=int, default=3, help="probes between the last fit and the first failure")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a probe may take")
    p.add_argument("--cpu", action="store_true", help="CPU workers (a check of the script, no capacity)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--probe", type=json.loads, default=None, help=argparse.SUPPRESS)  # one probe, internal
    return p.parse_args(argv)


def widened(model: Any, k: int) -> Any:
    """``model`` (a ModelConfig) with every channel count and hidden width times ``k``; the latent size,
    slots, heads, codebook and spatial sizes stay, so the architecture is the same, only wider."""
    r = dataclasses.replace
    vae, prior, dynamics, attention, perception = (
        model.vae,
        model.prior,
        model.dynamics,
        model.attention,
        model.perception,
    )
    return r(
        model,
        vae=r(
            vae,
            channels=tuple(c * k for c in vae.channels),
            embed_dim=vae.embed_dim * k,
            hidden_dim=vae.hidden_dim * k,
        ),
        prior=r(prior, hidden_dim=prior.hidden_dim * k),
        dynamics=r(dynamics, hidden_dim=dynamics.hidden_dim * k),
        attention=r(
            attention,
            feature_dim=attention.feature_dim * k,
            slot_dim=attention.slot_dim * k,
            hidden_dim=attention.hidden_dim * k,
        ),
        perception=r(
            perception,
            code_dim=perception.code_dim * k,
            tokenizer_channels=tuple(c * k for c in perception.tokenizer_channels),
            model_dim=perception.model_dim * k,
            context_dim=perception.context_dim * k,
        ),
    )


def probe_config(args: argparse.Namespace, stage: int, k: int) -> dict:
    from aime.config import Config, load_config
    from aime.config.loader import to_dict

    cfg = load_config(
        Config,
        None,
        [
            f"model={args.preset}",
            f"model.image_size={args.image_size}",
            "model.optim.balancing.mode=sum",
            "model.adversarial.enabled=false",
            f"train.zero_stage={stage}",
            "train.compile_rollout=none",
            f"train.batch_size={args.batch_size}",
            f"train.seq_len={args.seq_len}",
            f"train.use_gpu={str(not args.cpu).lower()}",
        ],
    )
    return to_dict(dataclasses.replace(cfg, model=widened(cfg.model, k)))


def probe_worker(loop_config: dict) -> None:
    """One rank of a probe: build, train ``steps`` steps, write ``rank<r>.json``."""
    import ray.train
    import ray.train.torch
    import torch

    from aime.config import Config, build
    from aime.models.balancing.balancer import GradientBalancer
    from aime.storage import atomic_write_text
    from aime.train.distributed import all_reduce_mean
    from aime.train.worker import build_engine, train_microbatch

    cfg = build(Config, loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    on_gpu = device.type == "cuda"
    out: dict[str, Any] = {"rank": rank}
    started = time.perf_counter()
    try:
        engine, _ = build_engine(cfg, device, world, built_on_device=True)
        out["build_seconds"] = round(time.perf_counter() - started, 2)
        params = [p for p in engine.module.parameters() if p.requires_grad]
        out["parameters"] = sum(int(getattr(p, "ds_numel", p.numel())) for p in engine.module.parameters())
        balancer = GradientBalancer(cfg.model.optim.balancing, reduce=all_reduce_mean)
        batch = random_batch(cfg, device)
        times = []
        for _ in range(loop_config["steps"]):
            t0 = time.perf_counter()
            train_microbatch(engine, balancer, params, batch, bf16=on_gpu)
            if on_gpu:
                torch.cuda.synchronize(device)
            times.append(round(time.perf_counter() - t0, 3))
        out |= {"fits": True, "step_seconds": times}
    except Exception as error:  # noqa: BLE001 - recorded: out of memory is the answer, anything else a bug
        first_line = (str(error).splitlines() or [""])[0][:300]
        out |= {"fits": False, "error": f"{type(error).__name__}: {first_line}"}
    if on_gpu:
        out["peak_allocated_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        out["peak_reserved_gb"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
    else:  # the process's peak resident memory (Linux reports KiB)
        out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    # Whole or absent: a probe killed at its time limit must not leave half a record to be read.
    atomic_write_text(Path(loop_config["out_dir"]) / f"rank{rank}.json", json.dumps(out))


def random_batch(cfg: Any, device: Any) -> dict:
    """One (B, T) batch as the stream gives it: uint8 frames, actions in [-1, 1], episode starts."""
    import torch

    g = torch.Generator().manual_seed(0)
    B, T, S = cfg.train.batch_size, cfg.train.seq_len, cfg.model.image_size
    batch = {
        "obs": torch.randint(0, 256, (B, T, 3, S, S), dtype=torch.uint8, generator=g),
        "action": torch.rand(B, T, cfg.model.action_dim, generator=g) * 2 - 1,
        "is_first": torch.zeros(B, T, dtype=torch.bool),
    }
    batch["is_first"][:, 0] = True
    return {key: value.to(device) for key, value in batch.items()}


def run_probe_here(spec: dict) -> int:
    """The probe process: its own local Ray, one TorchTrainer run, each rank's record in ``out_dir``."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ray.init(address="local", include_dashboard=False)  # its own Ray, never one RAY_ADDRESS names
    use_gpu = not spec["cpu"]
    trainer = TorchTrainer(
        probe_worker,
        train_loop_config=spec,
        scaling_config=ScalingConfig(num_workers=spec["workers"], use_gpu=use_gpu),
        run_config=RunConfig(name="probe", storage_path=str(Path(spec["out_dir"]) / "ray")),
    )
    trainer.fit()
    return 0


def probe(args: argparse.Namespace, stage: int, k: int, work: Path) -> dict:
    """Run one probe in a fresh process under ``--timeout``; its ranks' records, summarised."""
    out_dir = work / f"z{stage}_k{k}"
    out_dir.mkdir(parents=True)
    spec = {
        "config": probe_config(args, stage, k),
        "steps": args.steps,
        "workers": args.workers,
        "cpu": args.cpu,
        "out_dir": str(out_dir),
    }
    command = [sys.executable, __file__, "--probe", json.dumps(spec)]
    started = time.time()
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        log, _ = process.communicate(timeout=args.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        log, _ = process.communicate(timeout=60)
        timed_out = True
    ranks = [json.loads(p.read_text()) for p in sorted(out_dir.glob("rank*.json"))]
    process_end = {
        "timed_out": timed_out,
        "exit_code": process.returncode,
        "seconds": time.time() - started,
        "log_tail": (log or b"").decode(errors="replace")[-2000:],
    }
    return summarise_probe(stage, k, ranks, args.workers, process_end)


def summarise_probe(stage: int, k: int, ranks: list[dict], workers: int, process_end: dict) -> dict:
    """One probe's record from its ranks' reports and how its process ended."""
    fits = len(ranks) == workers and all(r.get("fits") for r in ranks)
    errors = sorted({r["error"] for r in ranks if "error" in r})
    seconds = process_end["seconds"]
    if not fits and not errors:
        timed_out = f"timed out after {seconds:.0f} s"
        errors = [
            timed_out if process_end["timed_out"] else f"the probe exited with {process_end['exit_code']}"
        ]
    # CUDA's allocator and DeepSpeed say "out of memory"; a timeout or another error is no evidence
    # of running out (though a rank that ran out may leave the others waiting: see the log's tail).
    peaks = [r["peak_allocated_gb"] for r in ranks if "peak_allocated_gb" in r]
    host_peaks = [r["peak_rss_gb"] for r in ranks if "peak_rss_gb" in r]  # CPU workers
    steps = [r["step_seconds"][-1] for r in ranks if r.get("step_seconds")]
    return {
        "zero_stage": stage,
        "width": k,
        "parameters": next((r["parameters"] for r in ranks if "parameters" in r), None),
        "fits": fits,
        "errors": errors,
        "out_of_memory": bool(errors) and all("out of memory" in e.lower() for e in errors),
        "log_tail": None if fits else process_end["log_tail"],
        "ranks_reported": len(ranks),
        "peak_allocated_gb_max_rank": max(peaks) if peaks else None,
        "peak_rss_gb_max_rank": max(host_peaks) if host_peaks else None,
        "last_step_seconds_max_rank": max(steps) if steps else None,
        "probe_seconds": round(seconds, 1),
    }


def next_width(args: argparse.Namespace, results: list[dict]) -> tuple[int, str] | None:
    """The next k for one stage, and why, given its probes so far: the listed widths in turn (else
    doubling from 1 while every probe fits, up to ``--max-width``), then up to ``--bisect`` probes
    halving the gap between the widest fit and the narrowest failure above it. None: done."""
    done = {r["width"]: r["fits"] for r in results}
    for k in args.widths or []:
        if k not in done:
            return k, "listed"
    if not args.widths and all(done.values()):
        k = 2 * max(done) if done else 1
        return (k, "doubling") if k <= args.max_width else None
    fits = [k for k, ok in done.items() if ok]
    above = [k for k, ok in done.items() if not ok and fits and k > max(fits)]
    bisections = sum(r["phase"] == "bisection" for r in results)
    if not above or bisections >= args.bisect:
        return None
    middle = (max(fits) + min(above)) // 2
    return (middle, "bisection") if middle > max(fits) else None


def main() -> int:
    args = parse_args()
    if args.probe is not None:
        return run_probe_here(args.probe)
    import ray
    import torch

    out: dict = {
        "benchmark": "zero_capacity",
        "device": "cpu"
        if args.cpu
        else (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None),
        "gpus_available": torch.cuda.device_count(),
        "workers": args.workers,
        "preset": args.preset,
        "image_size": args.image_size,
        "batch_size_per_gpu": args.batch_size,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "probes": [],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__},
    }
    if not args.cpu and torch.cuda.device_count() < args.workers:
        print(
            f"{args.workers} workers need {args.workers} GPUs; this host has {torch.cuda.device_count()}",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for stage in args.stages:
            results: list[dict] = []
            while (chosen := next_width(args, results)) is not None:
                k, phase = chosen
                results.append(probe(args, stage, k, Path(tmp)) | {"phase": phase})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            out["probes"] += results
    out |= capacity_summary(out["probes"])
    text = json.dumps(out, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


def capacity_summary(probes: list[dict]) -> dict:
    """The widest fit of each stage, its parameters against the preset's (k=1), and the target."""
    base = next((p["parameters"] for p in probes if p["width"] == 1 and p["parameters"]), None)
    largest: dict[str, Any] = {}
    for stage in sorted({p["zero_stage"] for p in probes}):
        fits = [p for p in probes if p["zero_stage"] == stage and p["fits"]]
        best = max(fits, key=lambda p: p["width"], default=None)
        largest[f"zero{stage}"] = {
            "width": best["width"] if best else None,
            "parameters": best["parameters"] if best else None,
            "vs_preset": best["parameters"] / base if best and base else None,
        }
    zero2_failed = sorted(p["width"] for p in probes if p["zero_stage"] == 2 and p.get("out_of_memory"))
    beyond = [
        p
        for p in probes
        if p["zero_stage"] == 3 and p["fits"] and zero2_failed and p["width"] >= zero2_failed[0]
    ]
    widest = max(beyond, key=lambda p: p["width"], default=None)
    ratio = widest["parameters"] / base if widest and base else None
    reason = "needs a ZeRO-3 fit at a width where ZeRO-2 ran out of memory (not a timeout, not another error)"
    return {
        "largest": largest,
        "targets": check(
            {"zero3_fit_where_zero2_failed_vs_preset": (ratio, ">=", 4.0, only(ratio is not None, reason))}
        ),
    }


if __name__ == "__main__":
    raise SystemExit(main())
