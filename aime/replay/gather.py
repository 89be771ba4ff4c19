"""Window plans through the stream, rows gathered by its reader (``replay.gather: reader``).

    ids --map_batches(PlanWindows, actors)--> plans {id, path, start, episode_id, stamp}: bytes per window,
        in blocks of train.plans_per_read (each actor decodes the plans' episodes into the frame cache)
        --iter_gathered: iter_batches(k*B), GatherWindows, split in k--> torch (B, T, ...) copied from the
        cache's maps by the reading thread

With ``replay.gather: samplers`` (the default) the sampler actors copy each window's rows and the
stream carries the pixels, about 400 KB per 64x64 window of 32 steps, through Ray's object store:
a second copy in, a third out, and Ray's per-block work on 2 cores bound the stream at a third of the
in-process sampler (README, "Compared with RLlib and TorchRL"). Here the stream carries plans and the
reading process (the trainer) copies the rows out of the node's frame cache, which the sampler actors
filled: the in-process sampler's cost, with the decoding still in the actors.

It needs the frame cache, on the reader's node: where a sampler actor ran on another node, the reader
finds no entry and decodes the episode itself (correct, slower). The windows are those of the
default stream, except where a planned file went away before it was read (evicted, and not in the
cache): the reader then draws that batch again from the store as it is now (``WindowSampler.sample``),
where a sampler actor would have drawn its block again; the data stays correct, its order is not that
of a run in which the file stayed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from aime.replay.dataset import SampleWindows
from aime.replay.sampler import WindowSampler
from aime.replay.windows import Window

GATHER_WINDOWS = 64  # windows a reader copies per GatherWindows call, at least (25 MB at 64x64, T=32)


class PlanWindows(SampleWindows):
    """Ray Data callable class: request ids -> window plans (the episodes decoded into the cache)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = batch["data"]
        windows = self.sampler.plan(ids)
        return {
            "id": np.asarray(ids, np.int64),
            "path": np.array([w.path for w in windows]),
            "start": np.array([w.start for w in windows], np.int64),
            "episode_id": np.array([w.episode_id for w in windows]),
            "stamp": np.array([w.stamp for w in windows]),
        }


class GatherWindows:
    """A batch of plans -> torch tensors (N, T, ...), read by ``sampler`` (the same store, seed and
    columns as the actors' samplers). Safe from several threads: the reads only copy from read-only
    maps, and a re-draw takes a lock."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler
        self._lock = threading.Lock()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        windows = [
            Window(str(path), int(start), str(episode), stamp=str(stamp))
            for path, start, episode, stamp in zip(
                batch["path"], batch["start"], batch["episode_id"], batch["stamp"], strict=True
            )
        ]
        try:
            arrays = self.sampler.read(windows)
        except (OSError, pa.ArrowException):
            with self._lock:  # the index is the sampler's state: one re-draw at a time
                arrays = self.sampler.sample(batch["id"])
        return {name: torch.from_numpy(values) for name, values in arrays.items()}


def iter_gathered(
    dataset: Any,
    sampler: WindowSampler,
    batch_size: int,
    *,
    prefetch_batches: int = 2,
    pin_memory: bool = False,
    gather_windows: int = GATHER_WINDOWS,
) -> Iterator[dict[str, torch.Tensor]]:
    """Torch batches (``batch_size``, T, ...) of a dataset of plans, in its order: Ray Data hands over
    k = ceil(gather_windows / batch_size) batches' plans at a time as numpy, this thread copies their
    rows in one ``GatherWindows`` call and hands them out as k views. ``dataset`` holds a multiple of
    ``batch_size`` plans (``ReplayBuffer.dataset`` does), so no batch comes out short.

    Why not ``iter_torch_batches(collate_fn=GatherWindows)``, which copies in Ray Data's prefetch
    threads: its per-batch work then cost more than the copy, and the consuming process sat at one
    core doing it (9,400-12,800 windows/s against this loop's 16,100-19,000 at 2,000 episodes on 2
    cores; README "Compared with RLlib and TorchRL"). The copy, about 40 us a 64x64 window of 32
    steps, is the reader's own time here: 5 ms a batch of 128, against the gpu preset's 570 ms step."""
    group = max(1, -(-gather_windows // batch_size))
    chunks = dataset.iter_batches(
        batch_size=batch_size * group,
        batch_format="numpy",
        prefetch_batches=max(1, -(-prefetch_batches // group)),
        drop_last=False,  # the last chunk holds the remaining whole batches
    )
    gather = GatherWindows(sampler)
    for plans in chunks:
        chunk = gather(plans)
        if pin_memory:
            chunk = {name: values.pin_memory() for name, values in chunk.items()}
        rows = len(next(iter(chunk.values())))
        for start in range(0, rows - batch_size + 1, batch_size):
            yield {name: values[start : start + batch_size] for name, values in chunk.items()}
