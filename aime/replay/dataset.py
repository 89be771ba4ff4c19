"""Replay windows as a Ray Data dataset, for streaming into Ray Train workers.

    ids (numpy blocks, id_block_dataset) --map_batches(SampleWindows, actors)--> {pixels (n, T, C, H, W), ...}
               --iter_torch_batches(B) / get_dataset_shard--> torch tensors (B, T, ...)
               (a trainer iterates ``executor_apart(dataset)``: see there)

Each input row is a request id; a sampler actor turns ``windows_per_read`` ids into that many windows
in one call (amortising Ray Data's per-block cost) and re-lists the store every ``refresh_seconds``,
so episodes written during training become visible. Blocks are columnar numpy tensors: no Python
object per row or per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aime.replay.frame_cache import FrameCache
from aime.replay.sampler import WindowSampler


class SampleWindows:
    """Ray Data callable class: request ids -> windows."""

    def __init__(
        self,
        root: str,
        seq_len: int,
        seed: int,
        capacity_steps: int | None,
        refresh_seconds: float,
        episode_filter: Any = None,
        columns: Sequence[str] | None = None,
        frame_cache: FrameCache | None = None,
    ):
        self.sampler = WindowSampler(
            root,
            seq_len,
            seed=seed,
            capacity_steps=capacity_steps,
            refresh_seconds=refresh_seconds,
            episode_filter=episode_filter,
            columns=columns,
            frame_cache=frame_cache,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.sampler.sample(batch["data"])


def batch_window_ids(
    *, first_batch: int, num_batches: int, batch_size: int, rank: int = 0, world_size: int = 1
) -> np.ndarray:
    """Window ids of a data-parallel rank's batches: local batch k is global batch
    ``(first_batch + k) * world_size + rank``, whose B windows are ``global * B ... global * B + B - 1``.

    Every (rank, step) reads its own fixed windows, so a resumed or restarted worker continues the
    exact data order of an uninterrupted run.  Returns int64 (num_batches * batch_size,).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    batches = np.arange(first_batch, first_batch + num_batches, dtype=np.int64) * world_size + rank
    return (batches[:, None] * batch_size + np.arange(batch_size, dtype=np.int64)).reshape(-1)


def window_dataset(
    root: str,
    *,
    seq_len: int,
    num_windows: int = 0,
    window_ids: np.ndarray | None = None,
    seed: int = 0,
    capacity_steps: int | None = None,
    refresh_seconds: float = 5.0,
    windows_per_read: int = 64,
    plans_per_read: int = 512,
    sampler_workers: int = 1,
    cpus_per_sampler: float = 1.0,
    first_id: int = 0,
    episode_filter: Any = None,
    columns: Sequence[str] | None = None,
    frame_cache: FrameCache | None = None,
    plans: bool = False,
) -> Any:
    """A dataset of windows of ``seq_len`` steps, in the order of ``window_ids`` (default: the
    ``num_windows`` ids from ``first_id``); the same seed and id give the same window. ``columns``:
    what each window carries (``WindowSampler``; default all); ``frame_cache``: where the sampler
    actors keep decoded episodes (frame_cache.py; None: they decode the row groups of every window).
    ``plans``: the dataset carries window plans for its reader to gather (gather.py), in blocks of
    ``plans_per_read`` instead of ``windows_per_read``."""
    if window_ids is None:
        window_ids = np.arange(first_id, first_id + num_windows, dtype=np.int64)
    if plans:
        from aime.replay.gather import PlanWindows
    dataset = id_block_dataset(
        window_ids,
        PlanWindows if plans else SampleWindows,
        dict(
            root=root,
            seq_len=seq_len,
            seed=seed,
            capacity_steps=capacity_steps,
            refresh_seconds=refresh_seconds,
            episode_filter=episode_filter,
            columns=columns,
            frame_cache=frame_cache,
        ),
        block_size=plans_per_read if plans else windows_per_read,
        actors=sampler_workers,
        num_cpus=cpus_per_sampler,
    )
    return dataset


def executor_apart(dataset: Any) -> Any:
    """An iterator over ``dataset`` (``iter_batches``, ``iter_torch_batches``) whose Ray Data
    streaming executor runs in an actor of its own instead of a thread of the caller's process.

    Why a trainer needs it: the executor's scheduling loop (Ray 2.60) waits only on tasks in flight,
    so while the consumer is the bottleneck (every sampler backpressured, none running) it spins,
    holding the GIL most of the time. Each time the training thread gives up the GIL (a CUDA sync, an
    autograd hook of DeepSpeed's, a kernel launch) it then waits for the interpreter's switch
    interval to get it back. The ``gpu`` preset trained at 10 samples/s over a 1,500-step stream and
    at 110-120 over a 100-step one, which ends before it backpressures (one H200, 2026-12);
    ``benchmarks/stream_contention.py`` shows the same on a CPU. ``streaming_split(1)`` moves the
    executor into Ray Data's split-coordinator actor; its one split sees every block, in order.
    """
    return dataset.streaming_split(1)[0]


def id_block_dataset(
    ids: np.ndarray,
    fn: type,
    fn_kwargs: dict[str, Any],
    *,
    block_size: int,
    actors: int,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
) -> Any:
    """Integer ids in blocks of exactly ``block_size`` (the last may be short), each turned into one
    batch by one call of a pool of ``actors`` instances of the callable class ``fn``; in id order.

    Exact blocks make every call see the same ids on every run (seeds and batch means never vary).
    In-memory id blocks rather than ``ray.data.range``: range's read tasks each want a whole CPU, and
    under Ray Train (which keeps the workers' CPUs from Ray Data) they can starve behind the actors.
    Built with ``from_blocks`` (each block put in the object store, its metadata read here) rather than
    ``from_numpy``, which runs a Ray task per block to make it: a training stream has one block per 64
    windows (3,200 for the gpu preset), and from_numpy took 10.2 s for them on 2 cores, from_blocks 1.9.
    """
    import pyarrow as pa
    import ray.data

    ids = np.asarray(ids, dtype=np.int64)
    blocks = [ids[i : i + block_size] for i in range(0, len(ids), block_size)] or [ids]
    dataset = ray.data.from_blocks([pa.table({"data": block}) for block in blocks]).map_batches(
        fn,
        fn_constructor_kwargs=fn_kwargs,
        batch_size=block_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(blocks)))),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    # Batches arrive in id order even with several actors: the data order is reproducible.
    dataset.context.execution_options.preserve_order = True
    return dataset
