"""Batches of a reader-gathered stream (``replay.gather: reader``) for the replay benchmarks: as the
trainer reads them (``iter_gathered``), or as it did until 2026-12-04, for the comparison row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def reader_batches(
    dataset: Any, sampler: Any, B: int, prefetch_batches: int, collate_per_batch: bool = False
) -> Iterator[dict]:
    """``dataset`` of window plans -> torch batches of B windows copied out of the frame cache.
    ``collate_per_batch``: one ``GatherWindows`` call per batch, as ``iter_torch_batches``'
    ``collate_fn`` in Ray Data's prefetch threads (the old way) instead of ``iter_gathered``."""
    from ray.data.collate_fn import NumpyBatchCollateFn

    from aime.replay.gather import GatherWindows, iter_gathered

    if not collate_per_batch:
        return iter_gathered(dataset, sampler, B, prefetch_batches=prefetch_batches)
    gather = GatherWindows(sampler)

    class Collate(NumpyBatchCollateFn):
        def __call__(self, batch):  # type: ignore[no-untyped-def,override]
            return gather(batch)

    return dataset.iter_torch_batches(
        batch_size=B, prefetch_batches=prefetch_batches, drop_last=True, collate_fn=Collate()
    )
