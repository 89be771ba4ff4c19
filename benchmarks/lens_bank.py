"""The lens bank against a loop over separate probe modules: same weights, same inputs (prints JSON).

    python benchmarks/lens_bank.py [--lenses 50 256] [--batch 1 512] [--device auto] [--out FILE]

Inputs are the activations of the ``--preset`` world model's ``encode`` (their real names and dims);
lens i reads activation i mod A. For each (N, B): median milliseconds per call of the bank and of the
loop (N ``Probe`` modules, one call each, outputs stacked), the speed-up, and the largest absolute
difference of their logits (fp32; bf16 beside it for the bank). Training: lenses x steps per second
for one bank step (one AdamW) against N probe steps (N AdamWs), batch 512. On a GPU every timing
is bracketed by a synchronize.

Target: the bank >= 20x the loop at 256 lenses, batch 1, on a GPU (checked only on CUDA with that cell).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from targets import check, only

from aime.lenses.bank import LensBank, LensSpec, Probe
from aime.lenses.fit import balanced_bce


def activation_dims(preset: str) -> dict[str, int]:
    from aime.config import Config, load_config
    from aime.models.world_model import WorldModel

    cfg = load_config(Config, None if preset == "default" else preset, [])
    model = WorldModel(cfg.model).eval()
    S, A = cfg.model.image_size, cfg.model.action_dim
    obs = torch.zeros(1, 2, 3, S, S, dtype=torch.uint8)
    is_first = torch.tensor([[True, False]])
    with torch.no_grad():
        out = model.encode(obs, torch.zeros(1, 2, A), is_first)
    return {name: int(value.shape[-1]) for name, value in out.items()}


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median milliseconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def inference(dims: dict[str, int], N: int, B: int, device: torch.device, repeats: int) -> dict[str, Any]:
    names = sorted(dims)
    specs = [LensSpec(f"concept{i}", names[i % len(names)], dims[names[i % len(names)]]) for i in range(N)]
    torch.manual_seed(0)
    probes = [Probe(s.input_dim, s.standardise).eval() for s in specs]  # built on the CPU
    bank = LensBank.from_probes(specs, probes).to(device).eval()
    half = LensBank.from_probes(specs, probes).to(device).eval().to(torch.bfloat16)
    probes = [p.to(device) for p in probes]  # Module.to moves in place
    x = {name: torch.randn(B, d, device=device) for name, d in dims.items()}

    @torch.no_grad()
    def loop() -> torch.Tensor:
        return torch.stack([p(x[s.activation]) for s, p in zip(specs, probes, strict=True)], dim=1)

    @torch.no_grad()
    def batched() -> torch.Tensor:
        return bank(x)

    diff = (loop() - batched()).abs().max().item()
    bank_ms, loop_ms = timed(batched, device, repeats), timed(loop, device, repeats)
    with torch.no_grad():
        bf16_diff = (half(x).float() - loop()).abs().max().item()
    bf16_ms = timed(lambda: half(x), device, repeats)
    return {
        "lenses": N,
        "batch": B,
        "bank_ms": round(bank_ms, 4),
        "loop_ms": round(loop_ms, 4),
        "speedup": round(loop_ms / bank_ms, 2),
        "max_abs_diff_fp32": diff,
        "bank_bf16_ms": round(bf16_ms, 4),
        "max_abs_diff_bf16": bf16_diff,
    }


def training(dims: dict[str, int], N: int, B: int, device: torch.device, steps: int) -> dict[str, Any]:
    names = sorted(dims)
    specs = [LensSpec(f"concept{i}", names[i % len(names)], dims[names[i % len(names)]]) for i in range(N)]
    torch.manual_seed(0)
    probes = [Probe(s.input_dim) for s in specs]  # built on the CPU
    bank = LensBank.from_probes(specs, probes).to(device)
    probes = [p.to(device) for p in probes]  # Module.to moves in place
    x = {name: torch.randn(B, d, device=device) for name, d in dims.items()}
    labels = (torch.rand(B, N, device=device) < 0.3).float()
    rate = labels.mean(0)
    bank_opt = torch.optim.AdamW(bank.parameters(), lr=1e-3)
    probe_opts = [torch.optim.AdamW(p.parameters(), lr=1e-3) for p in probes]

    def bank_step() -> None:
        loss = balanced_bce(bank(x), labels, rate).sum()
        bank_opt.zero_grad()
        loss.backward()
        bank_opt.step()

    def loop_step() -> None:
        for i, (s, p, opt) in enumerate(zip(specs, probes, probe_opts, strict=True)):
            loss = balanced_bce(p(x[s.activation])[:, None], labels[:, i : i + 1], rate[i : i + 1]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    bank_ms, loop_ms = timed(bank_step, device, steps, 2), timed(loop_step, device, steps, 2)
    return {
        "lenses": N,
        "batch": B,
        "bank_step_ms": round(bank_ms, 3),
        "loop_step_ms": round(loop_ms, 3),
        "bank_lens_steps_per_s": round(N / bank_ms * 1e3, 1),
        "loop_lens_steps_per_s": round(N / loop_ms * 1e3, 1),
        "speedup": round(loop_ms / bank_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lenses", type=int, nargs="+", default=[50, 256])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 512])
    parser.add_argument(
        "--preset", default="default", help="experiment whose activations are read (default: none)"
    )
    parser.add_argument("--device", default="auto", help="auto: cuda when available, else cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    dims = activation_dims(args.preset)
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "preset": args.preset,
        "activations": dims,
        "inference": [inference(dims, N, B, device, args.repeats) for N in args.lenses for B in args.batch],
        "training": [training(dims, N, 512, device, args.train_steps) for N in args.lenses],
    }
    cell = next((r for r in result["inference"] if (r["lenses"], r["batch"]) == (256, 1)), None)
    applies = only(device.type == "cuda", "a GPU target; this run: CPU")
    if applies is None and cell is None:
        applies = "the 256-lens, batch-1 cell was not run (--lenses 256 --batch 1)"
    result["targets"] = check({"speedup_256_lenses_batch_1": (cell and cell["speedup"], ">=", 20.0, applies)})
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
