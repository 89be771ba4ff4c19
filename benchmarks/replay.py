"""Replay read throughput against store size, side by side in one run (prints one JSON object).

    python benchmarks/replay.py [--episodes 100 2000] [--batch-size 16] [--seq-len 32] [--batches 200]

The store holds synthetic episodes (``aime/replay/synthetic.py``) of 501 steps at 64x64, written
once: it grows from the smallest size to the largest, and at each size S every path below reads
uniformly drawn windows of T steps, B per batch:

(a) plain_pyarrow, the floor: one process opens each window's file with ``pq.ParquetFile``, reads
    exactly the row groups the window overlaps (pixels only) and copies the window into a numpy
    (B, T, 3, 64, 64) batch. ``plain_pyarrow_all_columns`` reads every column the sampler reads, so
    the sampler's own overhead and the cost of its extra columns can be told apart;
(b) sampler: ``WindowSampler.sample`` in-process, with per-batch latency p50/p99, from the page
    cache (the rows above and below read from it: ``page_cache_resident_*``, measured with fincore,
    says how much of the store was there) and, as ``sampler_cold_page_cache``, after the store's
    files were dropped from it (posix_fadvise DONTNEED), so its reads come from the disk;
(c) ray_data: ``window_dataset`` consumed with ``iter_torch_batches``, 1 and 2 sampler actors, steady
    state: the first ``--warmup-batches`` batches (actor start-up, the first blocks), rounded up to
    whole blocks of ``--windows-per-read``, are discarded;
(d) sampler_rss_mb: a fresh process's RSS before and after ``refresh()`` and 20 sampled batches, and
    ``index_mb``, the memory the index holds: the sampler keeps a few numbers per file, not frames,
    so RSS must not grow with the pixels stored.

``row_groups_per_window`` says how many 64-row groups each path decodes per window: the sampler
reads one span per episode per call, so windows that share an episode share reads, which happens
often in small stores and in Ray Data's calls of 64 windows, and rarely in large ones.
"flatness" is each path's per-batch cost at the largest size over the smallest (1.0 is flat). Reads
come from the page cache whenever the store fits in memory ("store_fits_in_memory"), as on a
training node whose replay is local; the comparison is between read paths, not disks, except for
the cold row, which is this machine's disk.

Target: the sampler's memory flat in store size: RSS after sampling at the largest size <= 1.1x
that at the smallest (checked with two sizes or more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from bench_store import CONCEPTS, EPISODE_STEPS, IMAGE_SIZE, grow_store, store_bytes  # noqa: E402
from page_cache import evict_from_page_cache, page_cache_resident  # noqa: E402
from sampler_memory import sampler_rss_in_fresh_process  # noqa: E402
from targets import check, only  # noqa: E402

from aime.replay.sampler import STEP_COLUMNS, VECTOR_COLUMNS, WindowSampler  # noqa: E402
from aime.replay.schema import CONCEPT_PREFIX  # noqa: E402
from aime.replay.store import ReplayStore  # noqa: E402


# ---- (a) the floor ---------------------------------------------------------------------------
def plain_pyarrow(root: str, B: int, T: int, batches: int, warmup: int, columns: list[str]) -> dict:
    """Uniform windows read with nothing but pyarrow; every episode has the same length, so a
    uniform file and a uniform start give a uniform window."""
    episodes = []
    for path in ReplayStore(root).list_names():
        metadata = pq.read_metadata(path)
        counts = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        episodes.append((path, np.concatenate([[0], np.cumsum(counts)])))
    rng = np.random.default_rng(1)
    latencies, row_groups = [], 0
    for _ in range(warmup + batches):
        begin = time.perf_counter()
        pixels = np.empty((B, T, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)  # (B, T, C, H, W)
        for b in range(B):
            path, starts = episodes[rng.integers(len(episodes))]
            start = int(rng.integers(starts[-1] - T + 1))
            first = int(np.searchsorted(starts, start, side="right")) - 1
            last = int(np.searchsorted(starts, start + T, side="left")) - 1
            table = pq.ParquetFile(path).read_row_groups(range(first, last + 1), columns=columns)
            row_groups += last - first + 1
            window = table.slice(start - int(starts[first]), T).column("pixels")
            row = 0
            for chunk in window.chunks:
                n = len(chunk)
                frame = 3 * IMAGE_SIZE * IMAGE_SIZE  # fixed_size_binary: the data buffer is the frames
                data = np.frombuffer(chunk.buffers()[1], np.uint8)
                data = data[chunk.offset * frame : (chunk.offset + n) * frame]
                pixels[b, row : row + n] = data.reshape(n, 3, IMAGE_SIZE, IMAGE_SIZE)
                row += n
            assert row == T, (path, start, row)
        latencies.append(time.perf_counter() - begin)
    return _rates(latencies[warmup:], B) | {
        "row_groups_per_window": round(row_groups / (B * (warmup + batches)), 2)
    }


# ---- (b) the sampler in-process, from the page cache and from a cold one ---------------------
def sampler_in_process(
    root: str, B: int, T: int, batches: int, warmup: int, *, cold: bool = False, columns: list | None = None
) -> dict:
    """With ``cold``, the store's files are dropped from the page cache after the index is built
    (``evict_from_page_cache``) and nothing is discarded as warm-up: every timed read that is not a
    repeat of an earlier one comes from the disk. ``columns``: what each window carries (all)."""
    sampler = WindowSampler(root, T, seed=2, columns=columns)
    sampler.refresh(force=True)
    files = ReplayStore(root).list_names()
    if cold:
        evict_from_page_cache(files)
        warmup = 0
    resident = page_cache_resident(files)
    out = timed_batches(sampler, B, batches, warmup) | {
        "page_cache_resident_before": resident,
        "page_cache_resident_after": page_cache_resident(files),
    }
    if cold:
        return out
    return out | {
        "row_groups_per_window": sampler_row_groups_per_window(root, T, B),
        "row_groups_per_window_in_reads_of_64": sampler_row_groups_per_window(root, T, 64),
    }


def timed_batches(sampler: WindowSampler, B: int, batches: int, warmup: int, first_batch: int = 0) -> dict:
    """Rates of ``batches`` batches of B windows from ``first_batch`` on, after ``warmup`` untimed."""
    latencies = []
    for i in range(first_batch, first_batch + warmup + batches):
        begin = time.perf_counter()
        batch = sampler.sample(np.arange(i * B, (i + 1) * B))
        latencies.append(time.perf_counter() - begin)
        assert batch["pixels"].shape == (B, sampler.seq_len, 3, IMAGE_SIZE, IMAGE_SIZE), batch["pixels"].shape
    return _rates(latencies[warmup:], B)


def sampler_row_groups_per_window(root: str, T: int, windows_per_call: int, calls: int = 10) -> float:
    """Row groups the sampler decodes per window, counted (untimed) by wrapping the window reader's
    span planner: it reads one span per run of overlapping windows of a file per call, so windows of
    one episode in one call share their reads."""
    import aime.replay.windows as windows_module

    planner, counted = windows_module._row_group_spans, []

    def counting_planner(starts, rows, length):
        spans = planner(starts, rows, length)
        counted.extend(last - first + 1 for first, last, _ in spans)
        return spans

    windows_module._row_group_spans = counting_planner
    try:
        sampler = WindowSampler(root, T, seed=5)
        for i in range(calls):
            sampler.sample(np.arange(i * windows_per_call, (i + 1) * windows_per_call))
    finally:
        windows_module._row_group_spans = planner
    return round(sum(counted) / (calls * windows_per_call), 2)


def _rates(latencies: list[float], B: int) -> dict:
    seconds = np.asarray(latencies)
    return {
        "sequences_per_second": round(B * len(seconds) / seconds.sum(), 1),
        "batch_ms_p50": round(1e3 * float(np.percentile(seconds, 50)), 2),
        "batch_ms_p99": round(1e3 * float(np.percentile(seconds, 99)), 2),
    }


# ---- (c) the Ray Data stream -----------------------------------------------------------------
def ray_data(
    root: str,
    B: int,
    T: int,
    batches: int,
    warmup: int,
    workers: int,
    args: argparse.Namespace,
    columns: list | None = None,
    frame_cache: Any = None,
    reader: bool = False,
    collate_per_batch: bool = False,
) -> dict:
    """``reader``: the stream carries window plans and this process gathers the rows from the frame
    cache (``replay.gather: reader``; ``collate_per_batch``: the old way, gathered_stream.py)."""
    from aime.replay.dataset import window_dataset

    # The range's read tasks need a CPU of their own: sampler actors holding every Ray CPU (2 actors
    # of 1 CPU on ray.init(num_cpus=2)) starve them and the stream never yields a batch.
    cpus_per_sampler = min(1.0, (args.ray_cpus - 1) / workers)
    # Batches arrive a block (windows_per_read windows, or plans_per_read plans) at a time; timing from
    # the last batch of one block to the last batch of a later one covers the batches between.
    per_block = max(1, (args.plans_per_read if reader else args.windows_per_read) // B)
    warmup = max(per_block, -(-warmup // per_block) * per_block)
    batches = -(-batches // per_block) * per_block
    dataset = window_dataset(
        root,
        seq_len=T,
        num_windows=(warmup + batches) * B,
        seed=3,
        windows_per_read=args.windows_per_read,
        plans_per_read=args.plans_per_read,
        sampler_workers=workers,
        cpus_per_sampler=cpus_per_sampler,
        columns=columns,
        frame_cache=frame_cache,
        plans=reader,
    )
    sampler = WindowSampler(root, T, seed=3, columns=columns, frame_cache=frame_cache) if reader else None
    begin = time.perf_counter()
    arrivals = []
    if reader:
        from gathered_stream import reader_batches

        batches_out = reader_batches(dataset, sampler, B, args.prefetch_batches, collate_per_batch)
    else:
        batches_out = dataset.iter_torch_batches(
            batch_size=B, prefetch_batches=args.prefetch_batches, drop_last=True
        )
    for batch in batches_out:
        arrivals.append(time.perf_counter())
        assert tuple(batch["pixels"].shape) == (B, T, 3, IMAGE_SIZE, IMAGE_SIZE), batch["pixels"].shape
    # The last blocks can arrive in a burst (produced ahead, released as the stream ends): time up to
    # the end of the block before them.
    blocks_left = (len(arrivals) - warmup) // per_block
    tail = max(1, blocks_left // 10) if blocks_left > 2 else 0
    end = len(arrivals) - tail * per_block
    assert end > warmup, f"too few batches: {len(arrivals)}, warm-up {warmup}; raise --batches"
    seconds = arrivals[end - 1] - arrivals[warmup - 1]
    return {
        "sequences_per_second": round(B * (end - warmup) / seconds, 1),
        "batches_timed": end - warmup,
        "first_batch_seconds": round(arrivals[0] - begin, 2),
        "cpus_per_sampler": cpus_per_sampler,
    }


# ---- the run ---------------------------------------------------------------------------------
def measure_size(root: str, S: int, args: argparse.Namespace) -> dict:
    B, T, n, w = args.batch_size, args.seq_len, args.batches, args.warmup_batches
    size = store_bytes(root)
    raw_pixels = S * EPISODE_STEPS * 3 * IMAGE_SIZE**2
    all_columns = ["pixels", *VECTOR_COLUMNS, *STEP_COLUMNS, *(CONCEPT_PREFIX + c for c in CONCEPTS)]
    out: dict = {
        "episodes": S,
        "steps": S * EPISODE_STEPS,
        "store_bytes": size,
        "store_mb": round(size / 2**20, 1),
        "raw_pixels_over_store_bytes": round(raw_pixels / size, 2),
        "plain_pyarrow": plain_pyarrow(root, B, T, n, w, ["pixels"]),
        "plain_pyarrow_all_columns": plain_pyarrow(root, B, T, n, w, all_columns),
        "sampler": sampler_in_process(root, B, T, n, w),
        "sampler_cold_page_cache": sampler_in_process(root, B, T, n, w, cold=True),
        "ray_data": {f"workers_{k}": ray_data(root, B, T, n, w, k, args) for k in args.sampler_workers},
        "sampler_rss_mb": sampler_rss_in_fresh_process(root, B, T),
    }
    floor = out["plain_pyarrow"]["sequences_per_second"]
    ratios = {
        "sampler_over_plain_pyarrow": out["sampler"]["sequences_per_second"] / floor,
        "sampler_over_plain_pyarrow_all_columns": out["sampler"]["sequences_per_second"]
        / out["plain_pyarrow_all_columns"]["sequences_per_second"],
        "sampler_cold_over_warm": out["sampler_cold_page_cache"]["sequences_per_second"]
        / out["sampler"]["sequences_per_second"],
    }
    for key, result in out["ray_data"].items():
        ratios[f"ray_data_{key}_over_plain_pyarrow"] = result["sequences_per_second"] / floor
    out["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    return out


def flatness(small: dict, large: dict) -> dict:
    """Per-batch cost at the largest size over the smallest: 1.0 means the store size does not matter."""
    paths = {
        "plain_pyarrow": lambda r: r["plain_pyarrow"]["sequences_per_second"],
        "sampler": lambda r: r["sampler"]["sequences_per_second"],
        **{
            f"ray_data_{key}": (lambda r, key=key: r["ray_data"][key]["sequences_per_second"])
            for key in small["ray_data"]
        },
    }
    out = {name: round(rate(small) / rate(large), 3) for name, rate in paths.items()}
    out["sampler_p50"] = round(large["sampler"]["batch_ms_p50"] / small["sampler"]["batch_ms_p50"], 3)
    out["sampler_p99"] = round(large["sampler"]["batch_ms_p99"] / small["sampler"]["batch_ms_p99"], 3)
    out["sampler_rss_after"] = round(large["sampler_rss_mb"]["after"] / small["sampler_rss_mb"]["after"], 3)
    # What the index costs per episode, next to what an episode's frames would cost in memory.
    out["sampler_index_kb_per_episode"] = round(
        large["sampler_rss_mb"]["index_mb"] * 1024 / large["episodes"], 2
    )
    out["raw_pixel_kb_per_episode"] = round(EPISODE_STEPS * 3 * IMAGE_SIZE**2 / 1024, 1)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, nargs="+", default=[100, 2000], help="store sizes S")
    parser.add_argument("--batch-size", type=int, default=16, help="B: windows per batch")
    parser.add_argument("--seq-len", type=int, default=32, help="T: steps per window")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per path and size")
    parser.add_argument("--warmup-batches", type=int, default=8, help="batches discarded before timing")
    parser.add_argument("--sampler-workers", type=int, nargs="+", default=[1, 2], help="(c): actor counts")
    parser.add_argument("--windows-per-read", type=int, default=64, help="(c): windows per sampler call")
    parser.add_argument("--plans-per-read", type=int, default=512, help="(c), gathered by the reader")
    parser.add_argument("--prefetch-batches", type=int, default=2, help="(c): as train.prefetch_batches")
    parser.add_argument("--ray-cpus", type=int, default=2, help="num_cpus for ray.init")
    parser.add_argument("--write-processes", type=int, default=2, help="processes writing the store")
    parser.add_argument("--workdir", default=None, help="where the store goes (default: a new /tmp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the store; a rerun with it reuses it")
    args = parser.parse_args()
    if args.ray_cpus < 2:
        parser.error("--ray-cpus must be >= 2: the stream needs a CPU besides its sampler actors")
    return args


def main() -> None:
    args = parse_args()
    sizes = sorted(set(args.episodes))
    workdir = args.workdir or tempfile.mkdtemp(prefix="aime-replay-bench-", dir="/tmp")
    root = os.path.join(workdir, "store")
    have = len(ReplayStore(root).list_names())
    if have > sizes[0]:
        raise SystemExit(f"{root} holds {have} episodes, more than the smallest size {sizes[0]}")

    import psutil
    import ray

    ray.init(num_cpus=args.ray_cpus, include_dashboard=False)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    out: dict = {
        "config": {
            **{k: v for k, v in vars(args).items() if k not in ("workdir", "keep")},
            "episode_steps": EPISODE_STEPS,
            "image_size": IMAGE_SIZE,
            "store": root,
        },
        "machine": {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "generation": {"episodes_reused": have, "episodes_written": 0, "seconds": 0.0},
        "sizes": [],
    }
    try:
        for S in sizes:
            if S > have:
                out["generation"]["seconds"] += grow_store(root, have, S, args.write_processes)
                out["generation"]["episodes_written"] += S - have
                have = S
            out["sizes"].append(measure_size(root, S, args))
    finally:
        ray.shutdown()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    generation = out["generation"]
    if generation["episodes_written"]:
        generation["seconds"] = round(generation["seconds"], 1)
        generation["episodes_per_second"] = round(generation["episodes_written"] / generation["seconds"], 1)
    largest = out["sizes"][-1]["store_bytes"]
    out["machine"]["store_fits_in_memory"] = largest < psutil.virtual_memory().total
    if len(sizes) > 1:
        out["flatness"] = flatness(out["sizes"][0], out["sizes"][-1])
    rss = out.get("flatness", {}).get("sampler_rss_after")
    out["targets"] = check(
        {"sampler_rss_after_large_over_small": (rss, "<=", 1.1, only(len(sizes) > 1, "one store size"))}
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
