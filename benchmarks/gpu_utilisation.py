"""GPU utilisation (the fraction of time a kernel was running) sampled in a thread while a benchmark
runs, on the GPUs its work ran on. Shared by the GPU benchmarks; import it from a script in
benchmarks/.

Read in-process with NVML (``pip install -e ".[gpu]"``: nvidia-ml-py, imported as ``pynvml``), else
from ``nvidia-smi``; on a machine without NVIDIA GPUs there are no samples and every mean is None.
Which GPUs: the ones Ray assigned to the workers (``AssignedGpus`` records them as the Ray Train
workers see them), not the busiest on the host, which another job may be using.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' datasheets, for MFU.
BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def bf16_peak_tflops(gpu_name: str | None) -> float | None:
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if gpu_name and k in gpu_name), None)


def _nvml() -> Any:
    """pynvml, initialised, or None (not installed, or no NVIDIA driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, or NVMLError where no driver is loaded
        return None
    return pynvml


def gpu_names() -> list[str]:
    """The host's NVIDIA GPUs by index: [] on a machine without them."""
    nvml = _nvml()
    if nvml is not None:
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        names = [nvml.nvmlDeviceGetName(h) for h in handles]
        return [n.decode() if isinstance(n, bytes) else n for n in names]  # bytes in older releases
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    out = subprocess.run(query, capture_output=True, text=True, check=False).stdout
    return [line.strip() for line in out.strip().splitlines() if line.strip()]


def nvml_indices(ids: Sequence[str | int]) -> list[int]:
    """NVML (= nvidia-smi) indices of GPU ids as Ray and CUDA_VISIBLE_DEVICES give them: an index,
    or a UUID (``GPU-...``), which is looked up. Indices are taken as NVML's: they agree on hosts of
    one GPU model, where CUDA's fastest-first order is the PCI order NVML uses."""
    out = []
    nvml = _nvml()
    for gpu in ids:
        text = str(gpu).strip()
        if text.isdigit():
            out.append(int(text))
        elif nvml is not None:
            out.append(nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetHandleByUUID(text)))
    return sorted(set(out))


def visible_gpus() -> list[int]:
    """NVML indices of the GPUs this process and the Ray it starts may use: CUDA_VISIBLE_DEVICES where
    it is set, else every GPU of the host ([] on a machine without NVIDIA GPUs)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(len(gpu_names())))
    return nvml_indices([v for v in visible.split(",") if v.strip()])


def cuda_device_gpu(ordinal: int) -> list[int]:
    """The NVML index of this process's CUDA device ``ordinal`` (``torch.device("cuda", ordinal)``),
    as a list for ``GpuSampler.mean``: CUDA numbers the GPUs CUDA_VISIBLE_DEVICES lists, in its order."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [ordinal]
    return nvml_indices([visible.split(",")[ordinal]])


class GpuSampler:
    """Utilisation per GPU index every 200 ms in a thread: ``samples`` is [(time, {index: percent})].
    ``source`` says where the figures came from: "nvml", "nvidia-smi" or None (no NVIDIA GPUs)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.source: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        nvml = _nvml()
        if nvml is not None:
            self.source = "nvml"
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

            def read() -> dict[int, float]:
                return {i: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu) for i, h in enumerate(handles)}

        elif shutil.which("nvidia-smi") is not None:
            self.source = "nvidia-smi"
            read = _nvidia_smi_utilisation
        else:  # a machine without NVIDIA GPUs: no samples, means None
            return
        while not self._stop.is_set():
            self.samples.append((time.time(), read()))
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self, windows: list[tuple[float, float]], gpus: Sequence[int] | None, count: int = 1) -> dict:
        """Mean utilisation within the (start, end) wall-clock windows over the GPUs of index ``gpus``
        (those the work was assigned), and per GPU. Where they are unknown (None), the ``count``
        busiest GPUs stand in for them, and ``selection`` says so."""
        by_index: dict[int, list[float]] = {}
        for t, row in self.samples:
            if any(start <= t <= end for start, end in windows):
                for i, u in row.items():
                    by_index.setdefault(i, []).append(u)
        means = {i: sum(v) / len(v) for i, v in sorted(by_index.items())}
        if gpus is not None:
            chosen = [means[i] for i in gpus if i in means]
            selection = f"assigned GPUs {list(gpus)}"
        else:
            chosen = sorted(means.values(), reverse=True)[:count]
            selection = f"the {count} busiest GPUs (assignment unknown)"
        return {
            "mean": sum(chosen) / len(chosen) if chosen else None,
            "by_index": means,
            "selection": selection,
            "source": self.source,
        }


def _nvidia_smi_utilisation() -> dict[int, float]:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(i): float(u) for i, u in (line.split(",") for line in out.strip().splitlines())}


def assigned_gpus_callback(path: Path) -> Any:
    """A Ray Train callback (pass it to ``aime.train.driver.train(callbacks=...)``) that writes, once
    the worker group has started, each worker's Ray GPU ids and CUDA_VISIBLE_DEVICES to ``path`` as
    JSON; read it back with ``read_assigned_gpus``. It runs in Ray Train's controller on this host.
    Built on Ray Train's internal ``WorkerGroupCallback`` (the public ``UserCallback`` only sees
    reports): None where this Ray has no such class, and utilisation falls back to the busiest GPUs,
    labelled. Everything it ships is defined in here, so Ray pickles it by value: the controller and
    the workers need not import this module (benchmarks/ is not on their path)."""
    try:
        from ray.train.v2._internal.execution.callback import WorkerGroupCallback
    except ImportError:
        return None

    def worker_gpus() -> dict[str, Any]:  # runs in each Ray Train worker
        import os

        import ray

        return {
            "ray_gpu_ids": [str(i) for i in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }

    class AssignedGpus(WorkerGroupCallback):
        def after_worker_group_start(self, worker_group: Any) -> None:
            path.write_text(json.dumps(worker_group.execute(worker_gpus)))

    return AssignedGpus()


def read_assigned_gpus(path: Path) -> list[int] | None:
    """NVML indices of the GPUs the workers were assigned, or None where they were not recorded."""
    if not path.exists():
        return None
    workers = json.loads(path.read_text())
    return nvml_indices([gpu for w in workers for gpu in w["ray_gpu_ids"]])
