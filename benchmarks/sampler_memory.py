"""The replay sampler's memory, measured in a fresh process (part (d) of replay.py).

RSS before and after ``refresh()`` and ``RSS_BATCHES`` sampled batches, and the index's own Python
memory: the sampler keeps a few numbers per file, not frames, so its RSS must not grow with the store.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from aime.replay.sampler import WindowSampler

RSS_BATCHES = 20


def sampler_rss(root: str, B: int, T: int) -> dict:
    """Runs in a fresh process, so that nothing the parent allocated is counted. RSS includes what
    Arrow's allocator keeps for reuse after decoding; ``index_mb`` is the Python memory the index
    itself holds (tracemalloc over ``refresh()``), the part that grows with the number of episodes."""
    import tracemalloc

    import psutil
    import pyarrow as pa

    process = psutil.Process()
    sampler = WindowSampler(root, T, seed=4)
    before = process.memory_info().rss
    tracemalloc.start()
    sampler.refresh(force=True)
    index_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    highest = 0
    for i in range(RSS_BATCHES):
        sampler.sample(np.arange(i * B, (i + 1) * B))
        highest = max(highest, process.memory_info().rss)
    after = process.memory_info().rss
    mb = 1 / 2**20
    return {
        "before": round(before * mb, 1),
        "after": round(after * mb, 1),
        "growth": round((after - before) * mb, 1),
        "highest_while_sampling": round(highest * mb, 1),
        "index_mb": round(index_bytes * mb, 2),
        "arrow_allocated_after": round(pa.total_allocated_bytes() * mb, 1),
        "arrow_pool_peak": round(pa.default_memory_pool().max_memory() * mb, 1),
        "episodes_indexed": len(sampler.episodes),
    }


def sampler_rss_in_fresh_process(root: str, B: int, T: int) -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(sampler_rss, root, B, T).result()
