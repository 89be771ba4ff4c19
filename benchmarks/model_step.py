"""Forward+backward throughput of the world model: fp32 eager vs bf16 autocast vs torch.compile of the
whole model or of the per-frame rollout step, RGB vs sum balancing. Prints one JSON object.

    python benchmarks/model_step.py --device cuda                     # default preset, B=16, T=16
    python benchmarks/model_step.py --device cuda --batch-size 48 --seq-len 32 --balancing sum \
        --modes bf16,bf16-compile-step --profile                    # + GPU utilisation, kernels/step
    python benchmarks/model_step.py --device cpu --preset tiny --steps 3

A mode is a precision (fp32, bf16 autocast) with an optional suffix: ``-compile`` compiles the whole
model, ``-compile-step`` only the per-frame rollout step (``WorldModel.compile_rollout``).
On a GPU each configuration also reports the GPU's utilisation over its timed steps (NVML, else
nvidia-smi: ``gpu_utilisation.py``), and with ``--profile`` one more step runs under torch.profiler,
summarised as ``train.profile_step`` summarises a training step (``aime/train/profiling.py``: kernels
per step and per phase, GPU busy fraction, host syncs); its busy fraction and the MFU stand beside the
utilisation in each row.

Each configuration runs ``--warmup`` untimed steps (compilation happens there; each one's seconds are
in ``warmup_step_s``: with CUDA graphs the first step runs the compiled steps as warm-up and the
second records their graphs), then ``--steps`` timed ones, the clock read after a
``torch.cuda.synchronize`` at both ends. ``--cudagraph-asserts off`` turns off the checks CUDA graph
trees make of their memory pool while they warm up and record (inductor's
``triton.slow_path_cudagraph_asserts``; on by default, as in torch). ``--cudagraph-lookups torch``
runs CUDA graph trees' own lookups of each recorded tensor, ``reordered`` (the default, as training)
aime's (``aime/models/cudagraph_lookups.py``): the second warm-up step records one graph per call of
the compiled steps, and each recording looks up its tensors among those recorded before it.
``--profile-warmup-step N`` runs warm-up step N under cProfile and adds its functions by
cumulative time (``warmup_profile``). A step is forward, losses,
balancing and backward (no optimizer update). MFU is the model FLOPs of a step (counted once in fp32
by ``aime.models.summary.count_flops``; RGB counts one backward per task) times steps per second,
over the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import platform
import pstats
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from gpu_utilisation import GpuSampler, bf16_peak_tflops, cuda_device_gpu  # beside this script
from torch.profiler import record_function

from aime.config.loader import CONFIG_DIR, build, read_yaml
from aime.models import ModelConfig, WorldModel
from aime.models.balancing import GradientBalancer
from aime.models.config import BalancingConfig
from aime.models.cudagraph_lookups import reordered_cudagraph_lookups
from aime.models.summary import count_flops
from aime.train.profiling import summarize

PRESETS = CONFIG_DIR / "model"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", default="default", help="a cluster/configs/model preset name")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--modes", default="fp32,bf16,bf16-compile", help="comma list, see above")
    p.add_argument("--step-compile-mode", default="default", help="torch.compile mode for -compile-step")
    p.add_argument("--profile", action="store_true", help="kernels per step and GPU busy fraction")
    p.add_argument("--set", nargs="*", default=[], help="model overrides, e.g. vae.residual=true")
    p.add_argument("--balancing", default="sum,rgb", help="comma list of sum, rgb")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the bf16 peak used for MFU")
    p.add_argument(
        "--cudagraph-asserts",
        choices=("on", "off"),
        default="on",
        help="CUDA graph trees' memory-pool checks",
    )
    p.add_argument(
        "--cudagraph-lookups",
        choices=("reordered", "torch"),
        default="reordered",
        help="whose lookups of recorded tensors CUDA graph trees use in the warm-up steps",
    )
    p.add_argument(
        "--profile-warmup-step", type=int, default=None, help="cProfile this warm-up step (1-based)"
    )
    return p.parse_args()


def make_batch(cfg: ModelConfig, B: int, T: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    S = cfg.image_size
    batch = {
        "obs": torch.randint(0, 256, (B, T, 3, S, S), dtype=torch.uint8, generator=g),
        "action": torch.rand(B, T, cfg.action_dim, generator=g) * 2 - 1,
        "is_first": torch.zeros(B, T, dtype=torch.bool),
    }
    batch["is_first"][:, 0] = True
    return {k: v.to(device) for k, v in batch.items()}


def top_functions(profiler: cProfile.Profile, count: int = 25) -> list[dict]:
    """The profile's functions by cumulative seconds: where a slow warm-up step goes."""
    stats = pstats.Stats(profiler)
    rows = [
        {
            "function": f"{Path(file).name}:{line}({name})",
            "calls": calls,
            "cumulative_s": round(cumulative, 3),
        }
        for (file, line, name), (_, calls, _, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    return sorted(rows, key=lambda row: -row["cumulative_s"])[:count]


def run(cfg: ModelConfig, args: argparse.Namespace, mode: str, balancing: str, device: torch.device) -> dict:
    precision, _, compiled = mode.partition("-")
    if precision not in ("fp32", "bf16") or compiled not in ("", "compile", "compile-step"):
        raise ValueError(f"unknown mode {mode!r}: fp32|bf16 with an optional -compile or -compile-step")
    torch.manual_seed(0)
    model = WorldModel(cfg).to(device)
    forward = torch.compile(model) if compiled == "compile" else model
    if compiled == "compile-step":
        model.compile_rollout(args.step_compile_mode)
    balancer = GradientBalancer(BalancingConfig(mode=balancing))  # type: ignore[arg-type]
    params = [p for p in model.parameters() if p.requires_grad]
    batch = make_batch(cfg, args.batch_size, args.seq_len, device)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    )

    def step() -> float:  # phases labelled as aime.train.profiling summarises them
        with record_function("forward"), autocast:
            out = forward(batch["obs"], batch["action"], batch["is_first"])
            loss = model.losses(out, batch)
        with record_function("balance"):
            balanced = balancer(loss.tasks, params)
        with record_function("backward"):
            balanced.loss.backward()
        for p in params:
            p.grad = None
        return float(loss.total.detach())

    warmup_seconds, warmup_profile = [], None
    with reordered_cudagraph_lookups(args.cudagraph_lookups == "reordered"):
        for number in range(1, args.warmup + 1):
            profiler = cProfile.Profile() if number == args.profile_warmup_step else None
            sync(device)
            started = time.perf_counter()
            with profiler or contextlib.nullcontext():
                step()
                sync(device)
            warmup_seconds.append(round(time.perf_counter() - started, 3))
            if profiler is not None:
                warmup_profile = top_functions(profiler)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with GpuSampler() if device.type == "cuda" else contextlib.nullcontext() as gpu:
        sync(device)
        wall_start, start = time.time(), time.perf_counter()
        for _ in range(args.steps):
            total = step()
        sync(device)
        end, wall_end = time.perf_counter(), time.time()
    seconds = (end - start) / args.steps
    row = {
        "precision": precision,
        "compile": {"": None, "compile": "model", "compile-step": "rollout step"}[compiled],
        "compile_mode": args.step_compile_mode if compiled == "compile-step" else None,
        "balancing": balancing,
        "warmup_step_s": warmup_seconds,
        "warmup_profile": warmup_profile,
        "step_ms": 1e3 * seconds,
        "sequences_per_s": args.batch_size / seconds,
        "peak_memory_mb": peak_memory_mb(device),
        "final_loss": total,
    }
    if gpu is not None:
        ordinal = device.index if device.index is not None else torch.cuda.current_device()
        row["gpu_utilisation_percent"] = gpu.mean([(wall_start, wall_end)], cuda_device_gpu(ordinal))["mean"]
    if args.profile:
        row.update(profile_step(step, device))
        row["profile_gpu_busy_fraction"] = row["profile"]["gpu_busy_fraction"]
    return row


def profile_step(step: Callable[[], float], device: torch.device) -> dict:
    """One step under torch.profiler, summarised as ``train.profile_step`` summarises a training step."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        wall_us = (time.perf_counter() - start) * 1e6
    summary = summarize(prof.events(), wall_us)
    return {"profile": summary, "kernels_per_step": summary["kernels"]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    raw = read_yaml(PRESETS / f"{args.preset}.yaml")
    for override in args.set:  # model keys, dotted: vae.residual=true
        *path, leaf = override.split("=", 1)[0].split(".")
        node = raw
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(override.split("=", 1)[1])
    cfg = build(ModelConfig, raw)
    torch._inductor.config.triton.slow_path_cudagraph_asserts = args.cudagraph_asserts == "on"
    torch.manual_seed(0)
    flops = count_flops(WorldModel(cfg), seq_len=args.seq_len)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = args.peak_tflops or bf16_peak_tflops(gpu)
    results = []
    if "compile" in args.modes:
        # RGB back-propagates the compiled graph once per task (retain_graph=True), which AOTAutograd's
        # donated buffers forbid; they only save memory, so they are turned off for every mode here.
        torch._functorch.config.donated_buffer = False
    for mode in args.modes.split(","):
        for balancing in args.balancing.split(","):
            try:
                row = run(cfg, args, mode, balancing, device)
            except Exception as error:  # one failing configuration must not hide the others' figures
                results.append(
                    {"mode": mode, "balancing": balancing, "error": f"{type(error).__name__}: {error}"}
                )
                continue
            print(json.dumps(row), file=sys.stderr, flush=True)
            backward_passes = flops["tasks"] if balancing == "rgb" else 1.0
            step_flops = flops["forward"] + backward_passes * flops["backward"]
            row["model_tflops_per_s"] = step_flops * row["sequences_per_s"] / 1e12
            row["mfu_vs_bf16_peak"] = row["model_tflops_per_s"] / peak if peak else None
            results.append(row)
    report = {
        "device": gpu or platform.processor() or "cpu",
        "torch": torch.__version__,
        "preset": args.preset,
        "cudagraph_asserts": args.cudagraph_asserts,
        "cudagraph_lookups": args.cudagraph_lookups,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "parameters": sum(p.numel() for p in WorldModel(cfg).parameters()),
        "flops_per_sequence": flops["forward"] + flops["backward"],
        "flops_per_sequence_forward": flops["forward"],
        "bf16_peak_tflops": peak,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
