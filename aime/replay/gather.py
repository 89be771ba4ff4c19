"""Window plans through the stream, rows gathered by its reader (``replay.gather: reader``).

    ids --map_batches(PlanWindows, actors)--> plans {id, path, start, episode_id, stamp}: bytes per window
        (each actor decodes the plans' episodes into the frame cache: frame_cache.py)
        --iter_torch_batches(collate_fn=GatherWindows)--> torch (B, T, ...) copied from the cache's maps

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
