"""Where the reader-gathered stream's time goes: the gather inside the stream against the same gather
alone (prints JSON).

    python benchmarks/peers_replay.py --episodes 2000 --rows aime_sampler_frame_cache --keep \\
        --workdir /tmp/peers                    # a store and its filled frame cache
    python benchmarks/stream_gather.py --workdir /tmp/peers [--batches 400] [--repeats 2]

``replay.gather=reader`` (aime/replay/gather.py): the stream carries window plans and the reading
process copies the rows out of the frame cache. This script measures the way it copied them until
2026-12-04, in Ray Data's prefetch threads (``GatherWindows`` as ``iter_torch_batches``'
``collate_fn``, one call per batch), which led to ``iter_gathered``. Each repeat streams
``--batches`` batches of (B=16, T=32) windows of the peers' columns (2 sampler actors, plans in
blocks of ``--plans-per-read``, ``executor_apart`` as a trainer iterates) and times every
``collate_fn`` call; then it gathers 50 batches of the same plans in a plain loop (their pages already
mapped). Per repeat: the stream's windows/s after 50 warm-up batches, milliseconds per ``collate_fn``
call inside the stream and alone, and the share of the wall time spent in ``collate_fn`` (above 1:
its threads overlapped).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import ray
from ray.data.collate_fn import NumpyBatchCollateFn

from aime.replay.dataset import executor_apart, window_dataset
from aime.replay.frame_cache import FrameCache
from aime.replay.gather import GatherWindows
from aime.replay.sampler import WindowSampler

COLUMNS = ["pixels", "action", "reward", "is_first", "is_last", "is_terminal"]  # the peers' columns
B, T, WARMUP = 16, 32, 50


class TimedGather(NumpyBatchCollateFn):
    def __init__(self, gather: GatherWindows):
        self.gather, self.seconds, self.calls = gather, 0.0, 0

    def __call__(self, batch):  # type: ignore[no-untyped-def,override]
        start = time.perf_counter()
        out = self.gather(batch)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def one_repeat(root: str, cache: FrameCache, batches: int, plans_per_read: int) -> dict:
    dataset = window_dataset(
        root,
        seq_len=T,
        num_windows=B * (WARMUP + batches),
        seed=3,
        plans_per_read=plans_per_read,
        sampler_workers=2,
        cpus_per_sampler=0.5,
        columns=COLUMNS,
        frame_cache=cache,
        plans=True,
    )
    timed = TimedGather(GatherWindows(WindowSampler(root, T, seed=3, columns=COLUMNS, frame_cache=cache)))
    n, began, spent = 0, 0.0, 0.0
    for _ in executor_apart(dataset).iter_torch_batches(
        batch_size=B, prefetch_batches=2, drop_last=True, collate_fn=timed
    ):
        n += 1
        if n == WARMUP:
            began, spent, calls = time.perf_counter(), timed.seconds, timed.calls
    wall = time.perf_counter() - began
    plans = dataset.take_batch(B * 50)
    start = time.perf_counter()
    for i in range(50):
        timed.gather({k: v[i * B : (i + 1) * B] for k, v in plans.items()})
    alone = (time.perf_counter() - start) / 50
    return {
        "stream_windows_per_second": round((n - WARMUP) * B / wall, 1),
        "collate_ms_in_stream": round(1000 * (timed.seconds - spent) / (timed.calls - calls), 2),
        "collate_ms_alone": round(1000 * alone, 2),
        "gather_alone_windows_per_second": round(B / alone, 1),
        "collate_share_of_wall": round((timed.seconds - spent) / wall, 2),
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--workdir", required=True, help="peers_replay.py --keep --workdir: store + cache")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--plans-per-read", type=int, default=512)
    args = parser.parse_args()
    root = os.path.join(args.workdir, "store")
    cache = FrameCache(os.path.join(args.workdir, "frame_cache"), 64)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = [one_repeat(root, cache, args.batches, args.plans_per_read) for _ in range(args.repeats)]
    out = {"benchmark": "stream_gather", "B": B, "T": T, "plans_per_read": args.plans_per_read, "runs": runs}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
