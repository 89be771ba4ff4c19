"""Window plans through the stream, rows gathered by its reader (``replay.gather: reader``).

    ids --map_batches(PlanWindows, actors)--> plans {id, path, start, episode_id, stamp}: bytes per window
        (each actor decodes the plans' episodes into the frame cache: frame_cache.py)
        --iter_torch_batches(k*B plans, collate_fn=GatherWindows)--> torch (k*B, T, ...) copied from the
        cache's maps --split--> k batches (B, T, ...): ``gathered_batches``

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
from ray.data.collate_fn import NumpyBatchCollateFn

from aime.replay.dataset import SampleWindows
from aime.replay.sampler import WindowSampler
from aime.replay.windows import Window


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


class GatherWindows(NumpyBatchCollateFn):
    """``collate_fn`` of ``iter_torch_batches``: a batch of plans -> torch tensors (B, T, ...), read
    by ``sampler`` (the same store, seed and columns as the actors' samplers). Called from Ray Data's
    prefetch threads: the reads only copy from read-only maps, and a re-draw takes a lock."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler
        self._lock = threading.Lock()

    # Ray annotates the result as an unbound TypeVar, which no concrete type overrides for mypy.
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:  # type: ignore[override]
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


def gathered_batches(
    dataset: Any,
    gather: GatherWindows,
    batch_size: int,
    *,
    windows_per_read: int,
    prefetch_batches: int,
    pin_memory: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Torch batches (B, T, ...) of a dataset of plans, gathered a block of ``windows_per_read``
    windows at a time (k = windows_per_read // B batches per call, at least 1) and split into views.

    The same batches, in the same order, as ``iter_torch_batches(batch_size=B, collate_fn=gather)``
    with ``drop_last``; Ray Data's cost per batch (its iterator, the hand-off from its prefetch
    threads, the collate call) is paid once per k batches: at B=16 it was most of the stream's time
    (README, "Compared with RLlib and TorchRL").
    """
    group = max(1, windows_per_read // batch_size)
    blocks = dataset.iter_torch_batches(
        batch_size=batch_size * group,
        prefetch_batches=max(1, -(-prefetch_batches // group)),  # the same windows ahead as B-batches
        drop_last=False,  # a short last block still holds whole batches; a partial batch is dropped
        pin_memory=pin_memory,
        collate_fn=gather,
    )
    for block in blocks:
        windows = len(next(iter(block.values())))
        for start in range(0, windows - batch_size + 1, batch_size):
            yield {name: values[start : start + batch_size] for name, values in block.items()}
