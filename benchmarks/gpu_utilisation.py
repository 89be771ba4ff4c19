"""GPU utilisation as nvidia-smi reports it (the fraction of time a kernel was running), sampled in a
thread while a benchmark runs. Shared by the GPU benchmarks; import it from a script in benchmarks/."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time


class GpuSampler:
    """nvidia-smi utilization.gpu per GPU every 200 ms in a thread: [(time, {index: percent})]."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[int, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if shutil.which("nvidia-smi") is None:  # a machine without NVIDIA GPUs: no samples, means None
            return
        while not self._stop.is_set():
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            row = {int(i): float(u) for i, u in (line.split(",") for line in out.strip().splitlines())}
            self.samples.append((time.time(), row))
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean_busiest(self, windows: list[tuple[float, float]], gpus: int) -> dict:
        """Mean utilisation within the (start, end) windows of the ``gpus`` busiest GPUs, and per GPU."""
        by_index: dict[int, list[float]] = {}
        for t, row in self.samples:
            if any(start <= t <= end for start, end in windows):
                for i, u in row.items():
                    by_index.setdefault(i, []).append(u)
        means = {i: sum(v) / len(v) for i, v in sorted(by_index.items())}
        busiest = sorted(means.values(), reverse=True)[:gpus]
        return {"mean": sum(busiest) / len(busiest) if busiest else None, "by_index": means}
