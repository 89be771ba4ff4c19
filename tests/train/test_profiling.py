"""The profile summary on hand-built profiler events (torch's own FunctionEvent): a GPU timeline that
a CPU machine cannot record, with overlapping kernels, a backward launched from another thread and
the profiler's closing synchronisation."""

from __future__ import annotations

import pytest
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from aime.train.profiling import summarize


def event(
    name: str, start: float, end: float, *, thread: int = 0, device=DeviceType.CPU, **kw
) -> FunctionEvent:
    return FunctionEvent(
        id=hash((name, start)), name=name, thread=thread, start_us=start, end_us=end, device_type=device, **kw
    )


def launch(name: str, start: float, kernel: str, *, thread: int = 0, parent: FunctionEvent | None = None):
    op = event(name, start, start + 1, thread=thread)
    op.append_kernel(kernel, 0, 1.0)
    if parent is not None:
        op.cpu_parent = parent
    return op


def gpu(name: str, start: float, end: float) -> FunctionEvent:
    return event(name, start, end, device=DeviceType.CUDA)


def test_phases_kernels_busy_time_and_syncs():
    forward = event("forward", 0, 40)
    balance = event("balance", 40, 60)
    step = event("optimizer_step", 60, 100)
    events = [
        forward,
        balance,
        step,
        launch("aten::mm", 5, "gemm", parent=forward),
        launch("aten::mm", 45, "gemm", thread=7),  # autograd's device thread, during balance
        launch("aten::add_", 70, "add", parent=step),
        launch("aten::copy_", 110, "Memcpy HtoD"),  # a copy, after the phases
        gpu("gemm", 10, 30),
        gpu("gemm", 20, 50),  # overlaps the first: the union is 10..50
        gpu("add", 80, 90),
        gpu("Memcpy HtoD", 110, 115),
        event("forward", 0, 120, device=DeviceType.CUDA, is_user_annotation=True),  # a GPU-side range
        event("cudaStreamSynchronize", 95, 96),
        event("cudaDeviceSynchronize", 118, 120),  # the profiler's closing one
    ]
    summary = summarize(events, wall_us=200.0)
    assert summary["kernels"] == 3 and summary["copies_and_memsets"] == 1
    assert summary["kernels_by_phase"] == {"forward": 1, "balance": 1, "optimizer_step": 1}
    assert summary["gpu_busy_ms"] == pytest.approx((40 + 10 + 5) / 1e3)
    assert summary["gpu_busy_fraction"] == pytest.approx(55 / 200)
    assert summary["phase_wall_ms"] == pytest.approx(
        {"forward": 0.04, "balance": 0.02, "optimizer_step": 0.04}
    )
    assert summary["host_syncs"] == {"cudaStreamSynchronize": 1}
    assert summary["most_frequent_kernels"] == {"gemm": 2, "add": 1}
