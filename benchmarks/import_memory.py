"""Peak memory of a DMC-VB import: driver and Ray workers, on a generated TFRecord set (prints JSON).

    python benchmarks/import_memory.py                      # 200 episodes x 501 steps, 64x64 PNG
    python benchmarks/import_memory.py --episodes 20        # a quick check

Generates ``--episodes`` DMC-VB-like episodes (``aime/replay/importers/testing.py``: PNG frames,
float64-byte actions and states, cheetah-run, so concepts are labelled too) into ``--data``, in
files of ``--episodes-per-file`` records (reused if present), imports them with ``--workers`` Ray
tasks into a fresh replay root, and samples the resident memory of the driver and of every Ray
worker process every 50 ms. The import streams one record per task, so the peaks should not grow
with the number of episodes or files. Target: the largest sum (driver and workers) < 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import psutil  # noqa: E402
from targets import check  # noqa: E402

from aime.replay.importers import DmcvbImporter, WriteSettings, run_import  # noqa: E402
from aime.replay.importers.testing import write_dmcvb_subset  # noqa: E402

MIB = 2**20


class MemorySampler(threading.Thread):
    """Polls the RSS of this process and of Ray's worker processes (its descendants)."""

    def __init__(self, period: float = 0.05):
        super().__init__(daemon=True)
        self.period = period
        self.driver = psutil.Process()
        self.stop = threading.Event()
        self.driver_peak = self.worker_peak = self.workers_sum_peak = self.total_peak = 0

    def run(self) -> None:
        while not self.stop.is_set():
            driver = self.driver.memory_info().rss
            workers = []
            for child in self.driver.children(recursive=True):
                try:
                    if "default_worker" in " ".join(child.cmdline()) or child.name().startswith("ray::"):
                        workers.append(child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            self.driver_peak = max(self.driver_peak, driver)
            self.worker_peak = max(self.worker_peak, max(workers, default=0))
            self.workers_sum_peak = max(self.workers_sum_peak, sum(workers))
            self.total_peak = max(self.total_peak, driver + sum(workers))
            time.sleep(self.period)


def generate(data: Path, args: argparse.Namespace) -> float:
    manifest = data / "manifest.json"
    wanted = {k: getattr(args, k) for k in ("episodes", "episodes_per_file", "steps", "image_size")}
    if manifest.exists() and json.loads(manifest.read_text()) == wanted:
        return 0.0
    shutil.rmtree(data, ignore_errors=True)
    start = time.perf_counter()
    write_dmcvb_subset(
        data,
        files=-(-args.episodes // args.episodes_per_file),
        episodes_per_file=args.episodes_per_file,
        steps=args.steps,
        image_size=args.image_size,
        pixels="png",
        numbers="bytes",
    )
    manifest.write_text(json.dumps(wanted))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--episodes-per-file", type=int, default=20)
    parser.add_argument("--steps", type=int, default=501, help="rows per episode (DMC-VB: 501)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "aime-import-bench"))
    args = parser.parse_args()

    import ray

    data = Path(args.data) / f"{args.episodes}x{args.steps}-{args.image_size}"
    generate_seconds = generate(data, args)
    input_bytes = sum(p.stat().st_size for p in data.rglob("*.tfrecord-*"))
    ray.init(num_cpus=args.workers, include_dashboard=False)
    out = Path(tempfile.mkdtemp(prefix="aime-import-bench-out-"))
    sampler = MemorySampler()
    sampler.start()
    try:
        start = time.perf_counter()
        summary = run_import(DmcvbImporter(str(data)), WriteSettings(out=str(out)), workers=args.workers)
        seconds = time.perf_counter() - start
    finally:
        sampler.stop.set()
        sampler.join()
        ray.shutdown()
        shutil.rmtree(out, ignore_errors=True)
    result = {
        "episodes": summary.episodes,
        "files": summary.files,
        "rows": summary.rows,
        "skipped": len(summary.skipped),
        "image_size": args.image_size,
        "workers": args.workers,
        "input_mib": round(input_bytes / MIB, 1),
        "written_mib": round(summary.bytes / MIB, 1),
        "generate_seconds": round(generate_seconds, 1),
        "import_seconds": round(seconds, 1),
        "rows_per_second": round(summary.rows / seconds),
        "driver_peak_rss_mib": round(sampler.driver_peak / MIB),
        "worker_peak_rss_mib": round(sampler.worker_peak / MIB),
        "workers_sum_peak_rss_mib": round(sampler.workers_sum_peak / MIB),
        "total_peak_rss_mib": round(sampler.total_peak / MIB),
    }
    result["targets"] = check({"total_peak_rss_mib": (result["total_peak_rss_mib"], "<", 2048)})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
