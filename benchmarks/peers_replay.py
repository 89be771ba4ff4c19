"""Replay sampling against TorchRL and RLlib on the same episodes, side by side (prints JSON).

    RAY_USAGE_STATS_ENABLED=0 flock /tmp/aime-ray.lock \\
        python benchmarks/peers_replay.py [--episodes 100 2000] [--batches 200] [--repeats 3]
    # a quick run: --episodes 20 100 --batches 40

The store holds aime's synthetic episodes (``aime/replay/synthetic.py``, 501 steps at 64x64, written
as ``benchmarks/replay.py`` writes them); it grows from the smallest size S to the largest and at
each size every row samples (B=16, T=32) windows, uniformly:

aime_sampler: ``WindowSampler.sample`` in-process (``replay.sampler_in_process``) reading the columns
    the peers hold (``PEER_COLUMNS``: the same work); memory: ``replay.sampler_rss_in_fresh_process``
    (a fresh process's RSS after indexing the store and sampling 20 batches); load: building the
    index (``refresh``);
aime_sampler_every_column: the same reading every column of the store (state, step, discount,
    policy_version and the concepts too: what the sampler read for every consumer until 2026-12-03);
aime_ray_data: ``window_dataset`` with 2 sampler actors consumed by ``iter_torch_batches``
    (``replay.ray_data``, steady state), the peers' columns; load: time to its first batch. Each
    actor holds one ``WindowSampler``, so its memory is aime_sampler's;
aime_sampler_frame_cache: aime_sampler with ``replay.frame_cache`` (``aime/replay/frame_cache.py``:
    each episode decoded once onto local disk, windows copied out of memory maps), in a fresh process
    like the peers; load: building the index and filling the cache for every episode (what TorchRL's
    load does: uncompressed frames written to memory-mapped files); the cache's size on disk;
aime_ray_data_frame_cache: aime_ray_data with the same (already filled) cache;
aime_ray_data_reader: the same with ``replay.gather: reader`` (``aime/replay/gather.py``): the stream
    carries window plans and this process copies the rows out of the cache (the trainer's stream
    with that setting), the plans in blocks of ``--plans-per-read`` (``train.plans_per_read``);
aime_ray_data_reader_window_blocks: the same as the stream read plans until 2026-12-04 (not a default
    row: the comparison for that change): in blocks of ``--windows-per-read``, copied one batch at a
    time by ``iter_torch_batches``' collate_fn in Ray Data's threads (not ``iter_gathered``);
torchrl: ``ReplayBuffer(LazyMemmapStorage, SliceSampler(slice_len=T, traj_key="episode",
    cache_values=True), batch_size=B*T)``, reshaped to (B, T); memory-mapped files under a scratch
    directory on disk;
rllib: ``EpisodeReplayBuffer.sample(batch_size_B=B, batch_length_T=T)`` over ``SingleAgentEpisode``s
    held in memory (a row that reaches an episode's end continues with another episode's start:
    RLlib's semantics, not aime's).

The peers load the store's episodes (pixels, action, reward, is_first, is_last, is_terminal) with
aime's own reader (``read_windows``, one whole-episode window per file) and insert them: "load" is
that read plus the insert. Each peer runs in a fresh process that never starts Ray (``ray.init`` is
replaced by an error there); its "rss" is measured after loading and after sampling, split into
anonymous memory and file-backed pages (TorchRL's memory-mapped storage is the latter, which the
kernel can drop). A peer whose data would not fit in the free memory (RLlib) or disk (TorchRL) is
reported "skipped: ..." rather than run. Sampling is repeated ``--repeats`` times per size
(min/median/max); ``scaling`` gives each row's windows/s at the largest size over the smallest and
the slope of resident memory and load time against the store size.

Targets (issue 19): at 2,000 episodes or more, each aime row's windows/s >= each peer's; aime's
resident memory flat in store size (the sampler's at the largest size <= 1.1x at the smallest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import EPISODE_STEPS, IMAGE_SIZE, grow_store, store_bytes  # noqa: E402
from peer_buffers import (  # noqa: E402
    FRAME_BYTES,
    MB,
    PEER_COLUMNS,
    Row,
    in_fresh_process,
    rllib_row,
    room_for,
    torchrl_row,
)
from replay import ray_data, sampler_in_process, sampler_rss_in_fresh_process  # noqa: E402
from targets import check, only  # noqa: E402

from aime.replay.frame_cache import FrameCache  # noqa: E402
from aime.replay.sampler import WindowSampler  # noqa: E402
from aime.replay.store import ReplayStore  # noqa: E402

CACHE_GB = 1024.0  # the benchmark's cache holds the whole store: nothing is evicted while it samples


# ---- aime ------------------------------------------------------------------------------------
def aime_sampler_row(
    root: str, B: int, T: int, batches: int, warmup: int, repeats: int, columns: list | None
) -> Row:
    begin = time.perf_counter()
    WindowSampler(root, T).refresh(force=True)
    load = time.perf_counter() - begin
    runs = []
    for _ in range(repeats):
        result = sampler_in_process(root, B, T, batches, warmup, columns=columns)
        result["windows_per_second"] = result.pop("sequences_per_second")
        runs.append(result)
    rss = sampler_rss_in_fresh_process(root, B, T)
    return {
        "runs": runs,
        "load_seconds": round(load, 2),
        "rss_mb": {"before_load": {"rss": rss["before"]}, "after_sampling": {"rss": rss["after"]}},
        "index_mb": rss["index_mb"],
    }


def aime_frame_cache_row(
    root: str, B: int, T: int, batches: int, warmup: int, repeats: int, cache: str
) -> Row:
    """In a fresh process (``in_fresh_process``): fill the cache, then sample ``repeats`` times."""
    from peer_buffers import memory
    from replay import timed_batches

    before = memory()
    begin = time.perf_counter()
    frame_cache = FrameCache(cache, CACHE_GB)
    sampler = WindowSampler(root, T, seed=2, columns=PEER_COLUMNS, frame_cache=frame_cache)
    sampler.refresh(force=True)
    cache_bytes = frame_cache.fill(sampler.store, sampler.episodes, PEER_COLUMNS)
    load = time.perf_counter() - begin
    loaded = memory()
    runs = []
    for repeat in range(repeats):  # each repeat draws windows of its own
        rates = timed_batches(sampler, B, batches, warmup, first_batch=repeat * (warmup + batches))
        rates["windows_per_second"] = rates.pop("sequences_per_second")
        runs.append(rates)
    return {
        "runs": runs,
        "load_seconds": round(load, 2),
        "cache_mb": round(cache_bytes * MB, 1),
        # Maps the process kept open (a quarter of its file-descriptor limit, raised to the hard one):
        # a store with more episodes reopens a map for some windows.
        "open_map_budget": frame_cache.open_map_budget,
        "rss_mb": {"before_load": before, "after_load": loaded, "after_sampling": memory()},
    }


def aime_ray_data_row(
    root: str,
    B: int,
    T: int,
    args: argparse.Namespace,
    frame_cache: FrameCache | None = None,
    reader: bool = False,
    collate_per_batch: bool = False,
) -> Row:
    runs = []
    for _ in range(args.repeats):
        result = ray_data(
            root,
            *(B, T, args.batches, args.warmup_batches, 2, args),
            columns=PEER_COLUMNS,
            frame_cache=frame_cache,
            reader=reader,
            collate_per_batch=collate_per_batch,
        )
        runs.append(
            {
                "windows_per_second": result["sequences_per_second"],
                "first_batch_seconds": result["first_batch_seconds"],
                "batches_timed": result["batches_timed"],
            }
        )
    return {
        "runs": runs,
        "load_seconds": float(np.median([r["first_batch_seconds"] for r in runs])),
        "note": "batches arrive a block of windows_per_read at a time: no per-batch latency",
    }


# ---- summaries -------------------------------------------------------------------------------
def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": round(float(np.median(values)), 2), "max": max(values)}


def summarise_row(row: Row) -> Row:
    if "runs" not in row:
        return row
    out = {key: spread([r[key] for r in row["runs"]]) for key in row["runs"][0] if key != "batches_timed"}
    return out | {k: v for k, v in row.items() if k != "runs"}


def resident(row: Row) -> float | None:
    """Resident MB once loaded and sampled (the figure compared across sizes)."""
    rss = row.get("rss_mb", {})
    return rss["after_sampling"]["rss"] if "after_sampling" in rss else None


def scaling(small: Row, large: Row, s_small: int, s_large: int) -> Row:
    out: Row = {}
    for name, low in small["rows"].items():
        high = large["rows"].get(name, {})
        if "windows_per_second" not in low or "windows_per_second" not in high:
            continue
        entry: Row = {
            "windows_per_second_large_over_small": round(
                high["windows_per_second"]["median"] / low["windows_per_second"]["median"], 3
            )
        }
        per_thousand = 1000 / (s_large - s_small)
        if resident(low) is not None and resident(high) is not None:
            entry["rss_mb_per_1000_episodes"] = round((resident(high) - resident(low)) * per_thousand, 1)
            anon = [r["rss_mb"]["after_sampling"].get("anon") for r in (low, high)]
            if None not in anon:
                entry["anon_mb_per_1000_episodes"] = round((anon[1] - anon[0]) * per_thousand, 1)
        entry["load_seconds_per_1000_episodes"] = round(
            (high["load_seconds"] - low["load_seconds"]) * per_thousand, 2
        )
        out[name] = entry
    out["raw_pixels_mb_per_1000_episodes"] = round(1000 * EPISODE_STEPS * FRAME_BYTES * MB, 1)
    return out


def ratios(rows: Row) -> Row:
    out: Row = {}
    mine_rows = ("aime_sampler", "aime_ray_data", "aime_sampler_frame_cache", "aime_ray_data_frame_cache")
    for mine in (*mine_rows, "aime_ray_data_reader", "aime_ray_data_reader_window_blocks"):
        for peer in ("torchrl", "rllib"):
            if "windows_per_second" in rows.get(mine, {}) and "windows_per_second" in rows.get(peer, {}):
                a = rows[mine]["windows_per_second"]["median"]
                out[f"{mine}_over_{peer}"] = round(a / rows[peer]["windows_per_second"]["median"], 3)
    return out


def peer_targets(sizes: list[Row]) -> Row:
    small, large = sizes[0], sizes[-1]
    at_2000 = only(large["episodes"] >= 2000, f"set at 2,000 episodes; the largest here: {large['episodes']}")
    out: dict[str, tuple[Any, ...]] = {
        f"{name}_at_{large['episodes']}_episodes": (ratio, ">=", 1.0, at_2000)
        for name, ratio in large["ratios"].items()
    }
    low, high = (resident(s["rows"].get("aime_sampler", {})) for s in (small, large))
    flat = high / low if low and high else None
    out["aime_sampler_rss_large_over_small"] = (flat, "<=", 1.1, only(len(sizes) > 1, "one store size"))
    return check(out)


# ---- the run ---------------------------------------------------------------------------------
def measure_size(root: str, S: int, workdir: str, args: argparse.Namespace) -> Row:
    B, T, n, w, r = args.batch_size, args.seq_len, args.batches, args.warmup_batches, args.repeats
    rows: Row = {}
    for name in args.rows:
        print(f"[peers_replay] S={S} {name}", file=sys.stderr, flush=True)
        if name == "aime_sampler":
            rows[name] = aime_sampler_row(root, B, T, n, w, r, PEER_COLUMNS)
        elif name == "aime_sampler_every_column":
            rows[name] = aime_sampler_row(root, B, T, n, w, r, None)
        elif name == "aime_ray_data":
            rows[name] = aime_ray_data_row(root, B, T, args)
        elif name == "aime_sampler_frame_cache":
            cache = os.path.join(workdir, "frame_cache")
            shutil.rmtree(cache, ignore_errors=True)  # load fills it for every episode of this size
            rows[name] = in_fresh_process(aime_frame_cache_row, root, B, T, n, w, r, cache)
        elif name == "aime_ray_data_frame_cache":
            cache = FrameCache(os.path.join(workdir, "frame_cache"), CACHE_GB)
            rows[name] = aime_ray_data_row(root, B, T, args, frame_cache=cache)
        elif name in ("aime_ray_data_reader", "aime_ray_data_reader_window_blocks"):
            cache = FrameCache(os.path.join(workdir, "frame_cache"), CACHE_GB)
            before = name.endswith("window_blocks")  # the stream until 2026-12-04: see the docstring
            row_args = argparse.Namespace(
                **{**vars(args), "plans_per_read": args.windows_per_read if before else args.plans_per_read}
            )
            rows[name] = aime_ray_data_row(root, B, T, row_args, cache, reader=True, collate_per_batch=before)
        elif name == "torchrl":
            scratch = tempfile.mkdtemp(prefix="torchrl-", dir=workdir)
            try:
                room = room_for(S, scratch)
                rows[name] = (
                    {"unavailable": room}
                    if room
                    else in_fresh_process(torchrl_row, root, B, T, n, w, r, scratch)
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        elif name == "rllib":
            room = room_for(S, "memory")
            rows[name] = {"unavailable": room} if room else in_fresh_process(rllib_row, root, B, T, n, w, r)
        else:
            raise SystemExit(f"unknown row {name!r}")
    rows = {name: summarise_row(row) for name, row in rows.items()}
    size = store_bytes(root)
    return {"episodes": S, "store_mb": round(size * MB, 1), "rows": rows, "ratios": ratios(rows)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, nargs="+", default=[100, 2000], help="store sizes S")
    parser.add_argument("--batch-size", type=int, default=16, help="B: windows per batch")
    parser.add_argument("--seq-len", type=int, default=32, help="T: steps per window")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per row, size and repeat")
    parser.add_argument("--warmup-batches", type=int, default=8, help="batches discarded before timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rows",
        nargs="+",
        default=[
            "aime_sampler",
            "aime_sampler_every_column",
            "aime_ray_data",
            "aime_sampler_frame_cache",
            "aime_ray_data_frame_cache",
            "aime_ray_data_reader",
            "torchrl",
            "rllib",
        ],
        help="which rows",
    )
    parser.add_argument("--windows-per-read", type=int, default=64, help="aime_ray_data: windows per call")
    parser.add_argument("--plans-per-read", type=int, default=512, help="..._reader: plans per call")
    parser.add_argument("--prefetch-batches", type=int, default=2, help="aime_ray_data: as training's")
    parser.add_argument("--ray-cpus", type=int, default=2, help="num_cpus for ray.init")
    parser.add_argument("--write-processes", type=int, default=2, help="processes writing the store")
    parser.add_argument("--workdir", default=None, help="store and scratch (default: a new /tmp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the store; a rerun with it reuses it")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = sorted(set(args.episodes))
    workdir = args.workdir or tempfile.mkdtemp(prefix="aime-peers-replay-", dir="/tmp")
    root = os.path.join(workdir, "store")
    have = len(ReplayStore(root).list_names())
    if have > sizes[0]:
        raise SystemExit(f"{root} holds {have} episodes, more than the smallest size {sizes[0]}")

    import ray

    started = time.perf_counter()
    if any(row.startswith("aime_ray_data") for row in args.rows):
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False)
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
    out: Row = {
        "config": {k: v for k, v in vars(args).items() if k not in ("workdir", "keep")}
        | {"episode_steps": EPISODE_STEPS, "image_size": IMAGE_SIZE, "peer_columns": PEER_COLUMNS},
        "machine": {"cores": os.cpu_count()},
        "sizes": [],
    }
    try:
        for S in sizes:
            if S > have:
                grow_store(root, have, S, args.write_processes)
                have = S
            out["sizes"].append(measure_size(root, S, workdir, args))
    finally:
        ray.shutdown()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(os.path.join(workdir, "frame_cache"), ignore_errors=True)
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    out["versions"] = {"ray": ray.__version__} | next(
        (
            s["rows"]["torchrl"]["versions"]
            for s in out["sizes"]
            if "versions" in s["rows"].get("torchrl", {})
        ),
        {},
    )
    if len(sizes) > 1:
        out["scaling"] = scaling(out["sizes"][0], out["sizes"][-1], sizes[0], sizes[-1])
    out["targets"] = peer_targets(out["sizes"])
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
