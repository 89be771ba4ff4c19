"""One training step under torch.profiler (``train.profile_step``): where the step's time goes.

Rank 0 profiles optimizer step N (fetching its batch included) and writes into ``<run_dir>/profile/``
on its own node:

    step<N>.json           the summary below
    step<N>.trace.json.gz  the full timeline, for Perfetto (ui.perfetto.dev) or chrome://tracing

The summary answers "is the GPU waiting?": the step's wall time, the time some kernel was running
(the union of kernel intervals) and its fraction of the wall time, kernels launched per phase
(``record_function`` labels: the worker labels forward, balance, backward and optimizer_step;
kernels launched by autograd's own threads count as backward), the most frequent kernels, the CPU
operators with the most self time, and the host-device synchronisations (each one stops the CPU from
running ahead of the GPU).
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType

log = logging.getLogger(__name__)

PHASES = ("fetch", "forward", "balance", "backward", "optimizer_step")
# CUDA runtime calls that block the host until the device catches up.
_SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy ")


@contextmanager
def profiled_step(enabled: bool, directory: Path, step: int, device: torch.device) -> Iterator[None]:
    """Profile the body when ``enabled``; otherwise a no-op."""
    if not enabled:
        yield
        return
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall_us = (time.perf_counter() - start) * 1e6
    directory.mkdir(parents=True, exist_ok=True)
    summary = summarize(prof.events(), wall_us)
    summary["step"] = step
    (directory / f"step{step}.json").write_text(json.dumps(summary, indent=2) + "\n")
    trace = directory / f"step{step}.trace.json"
    prof.export_chrome_trace(str(trace))
    with trace.open("rb") as raw, gzip.open(f"{trace}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    trace.unlink()
    log.info("profiled step %d: %s", step, directory / f"step{step}.json")


def summarize(events: Any, wall_us: float, *, top: int = 12) -> dict[str, Any]:
    """The summary described in the module docstring, from ``profiler.events()``."""
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    busy_us, covered_to = 0.0, float("-inf")  # the union: overlapping kernels count once
    for e in sorted(kernels, key=lambda e: e.time_range.start):
        busy_us += max(0.0, e.time_range.end - max(e.time_range.start, covered_to))
        covered_to = max(covered_to, e.time_range.end)
    by_phase: Counter[str] = Counter()
    phase_cpu_ms: dict[str, float] = {}
    for e in events:
        if e.device_type != DeviceType.CPU:
            continue
        if e.cpu_parent is None and e.name in PHASES:
            phase_cpu_ms[e.name] = phase_cpu_ms.get(e.name, 0.0) + e.time_range.elapsed_us() / 1e3
        if e.kernels:
            root = e
            while root.cpu_parent is not None:
                root = root.cpu_parent
            by_phase[root.name if root.name in PHASES else "backward"] += len(e.kernels)
    cpu_ops = Counter()
    for e in events:
        if e.device_type == DeviceType.CPU and e.name not in PHASES:
            cpu_ops[e.name] += e.self_cpu_time_total
    syncs = Counter(e.name for e in events if e.name.startswith(_SYNCS))
    return {
        "wall_ms": wall_us / 1e3,
        "phase_wall_ms": phase_cpu_ms,
        "kernels": len(kernels),
        "kernels_by_phase": dict(by_phase),
        "gpu_busy_ms": busy_us / 1e3,
        "gpu_busy_fraction": busy_us / wall_us if kernels else None,
        "most_frequent_kernels": dict(Counter(e.name[:100] for e in kernels).most_common(top)),
        "cpu_self_ms_by_op": {name: us / 1e3 for name, us in cpu_ops.most_common(top)},
        "host_syncs": dict(syncs),
    }
