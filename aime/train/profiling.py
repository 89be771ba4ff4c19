"""One training step under torch.profiler (``train.profile_step``): where the step's time goes.

Rank 0 profiles optimizer step N (fetching its batch included) and writes into ``<run_dir>/profile/``
on its own node:

    step<N>.json           the summary below
    step<N>.trace.json.gz  the full timeline, for Perfetto (ui.perfetto.dev) or chrome://tracing

The summary answers "is the GPU waiting?": the step's wall time, the time some kernel was running
(the union of kernel intervals) and its fraction of the wall time, kernels launched per phase
(``record_function`` labels: the worker labels fetch, forward, balance, backward and optimizer_step;
a kernel counts in the phase running when it was launched, from whichever thread), the most
frequent kernels, the CPU operators with the most self time, and the host-device synchronisations
(each one stops the CPU from running ahead of the GPU).
"""

from __future__ import annotations

import gzip
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

from aime.storage import atomic_write_json

log = logging.getLogger(__name__)

PHASES = ("fetch", "forward", "balance", "backward", "optimizer_step")
# CUDA runtime calls that block the host until the device catches up.
_SYNCS = frozenset({"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy"})


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
    summary = summarize(prof.events(), wall_us, closing_syncs=1 if device.type == "cuda" else 0)
    summary["step"] = step
    atomic_write_json(directory / f"step{step}.json", summary)
    trace = directory / f"step{step}.trace.json"
    prof.export_chrome_trace(str(trace))
    with trace.open("rb") as raw, gzip.open(f"{trace}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    trace.unlink()
    log.info("profiled step %d: %s", step, directory / f"step{step}.json")


def summarize(events: Any, wall_us: float, *, top: int = 12, closing_syncs: int = 1) -> dict[str, Any]:
    """The summary described in the module docstring, from ``profiler.events()``.

    A kernel belongs to the phase whose main-thread ``record_function`` range holds the start of the
    CPU operator that launched it, so kernels launched from autograd's device threads (backward,
    RGB's per-task passes inside "balance") count where they happen; outside every phase: "other".
    ``closing_syncs`` synchronisations (the profiler's own, after the step) are not counted.
    """
    device_ops = [
        e for e in events if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
    ]
    kernels = [e for e in device_ops if not e.name.startswith(("Memcpy", "Memset"))]
    busy_us, covered_to = 0.0, float("-inf")  # the union: overlapping device work counts once
    for e in sorted(device_ops, key=lambda e: e.time_range.start):
        busy_us += max(0.0, e.time_range.end - max(e.time_range.start, covered_to))
        covered_to = max(covered_to, e.time_range.end)
    cpu = [e for e in events if e.device_type == DeviceType.CPU]
    phases = [e for e in cpu if e.cpu_parent is None and e.name in PHASES]
    phase_wall_ms: dict[str, float] = {}
    for e in phases:
        phase_wall_ms[e.name] = phase_wall_ms.get(e.name, 0.0) + e.time_range.elapsed_us() / 1e3

    def phase_of(e: Any) -> str:
        start = e.time_range.start
        return next((p.name for p in phases if p.time_range.start <= start <= p.time_range.end), "other")

    by_phase: Counter[str] = Counter()
    for e in cpu:
        launched = [k for k in e.kernels if not k.name.startswith(("Memcpy", "Memset"))]
        if launched:
            by_phase[phase_of(e)] += len(launched)
    cpu_ops: Counter[str] = Counter()
    for e in cpu:
        if e.name not in PHASES:
            cpu_ops[e.name] += e.self_cpu_time_total
    syncs = Counter(e.name for e in cpu if e.name in _SYNCS)
    if closing_syncs and syncs["cudaDeviceSynchronize"]:
        syncs["cudaDeviceSynchronize"] -= closing_syncs
    return {
        "wall_ms": wall_us / 1e3,
        "phase_wall_ms": phase_wall_ms,
        "kernels": len(kernels),
        "copies_and_memsets": len(device_ops) - len(kernels),
        "kernels_by_phase": dict(by_phase),
        "gpu_busy_ms": busy_us / 1e3,
        "gpu_busy_fraction": busy_us / wall_us if device_ops else None,
        "most_frequent_kernels": dict(Counter(e.name[:100] for e in kernels).most_common(top)),
        "cpu_self_ms_by_op": {name: us / 1e3 for name, us in cpu_ops.most_common(top)},
        "host_syncs": {name: n for name, n in syncs.items() if n > 0},
    }
