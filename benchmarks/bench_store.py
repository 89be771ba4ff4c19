"""The replay benchmarks' store: aime's synthetic episodes at the size of a dm_control episode, grown
from one store size to the next by several processes (replay.py, peers_replay.py)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes

EPISODE_STEPS = 501  # a 1000-step dm_control episode at action repeat 2, plus the final observation
IMAGE_SIZE = 64
CONCEPTS = ("a", "b", "c", "d")


def grow_store(root: str, have: int, want: int, processes: int) -> float:
    """Write episodes ``have .. want - 1``; returns seconds. Episodes depend only on their index, so
    contiguous ranges can be written by separate processes."""
    start = time.perf_counter()
    bounds = np.linspace(have, want, processes + 1).astype(int)
    ranges = [(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    kwargs = dict(length=EPISODE_STEPS, image_size=IMAGE_SIZE, concepts=CONCEPTS)
    if len(ranges) <= 1:
        for first, count in ranges:
            write_synthetic_episodes(root, count, start_index=first, **kwargs)
    else:
        # spawn, not fork: the parent holds Ray's threads and sockets.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
            futures = [
                pool.submit(write_synthetic_episodes, root, count, start_index=first, **kwargs)
                for first, count in ranges
            ]
            for future in futures:
                future.result()
    return time.perf_counter() - start


def store_bytes(root: str) -> int:
    return sum(e.size_bytes for e in ReplayStore(root).scan())
