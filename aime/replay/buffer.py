"""ReplayBuffer: the replay store as trainers see it: stats, capacity, and (B, T) torch batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from aime.config import ReplayConfig, TrainConfig
from aime.replay.dataset import batch_window_ids, executor_apart, window_dataset
from aime.replay.frame_cache import FrameCache
from aime.replay.sampler import WindowSampler
from aime.replay.stats import ReplayStats, replay_stats
from aime.replay.store import ReplayStore
from aime.replay.windows import MODEL_INPUTS

TRAINING_COLUMNS = tuple(MODEL_INPUTS.values())  # the world model's batch: pixels, action, is_first


class ReplayBuffer:
    def __init__(self, replay: ReplayConfig, train: TrainConfig, seed: int = 0):
        assert replay.root, "ReplayBuffer needs replay.root"
        self.replay, self.train, self.seed = replay, train, seed
        self.store = ReplayStore(replay.root)

    def stats(self) -> ReplayStats:
        return replay_stats(self.store)

    def evict(self) -> list[str]:
        return self.store.evict(self.replay.capacity_steps)

    def sampler(self, episode_filter: Any = None, columns: Sequence[str] | None = None) -> WindowSampler:
        """An in-process sampler (no Ray): the same windows the dataset yields for the same seed."""
        return WindowSampler(
            self.replay.root or "",
            self.train.seq_len,
            seed=self.seed,
            capacity_steps=self.replay.capacity_steps,
            refresh_seconds=self.replay.refresh_seconds,
            episode_filter=episode_filter,
            columns=columns,
            frame_cache=self.frame_cache(),
        )

    def frame_cache(self) -> FrameCache | None:
        """The samplers' cache of decoded episodes (``replay.frame_cache``), or None when it is off."""
        r = self.replay
        return FrameCache(r.frame_cache, r.frame_cache_gb) if r.frame_cache else None

    def dataset(
        self,
        num_batches: int,
        first_batch: int = 0,
        episode_filter: Any = None,
        *,
        rank: int = 0,
        world_size: int = 1,
        columns: Sequence[str] | None = TRAINING_COLUMNS,
        plans: bool = False,
    ) -> Any:
        """A Ray Data dataset of ``num_batches`` batches of ``batch_size`` windows, in a fixed order:
        rank ``rank`` of ``world_size`` reads its own batches from ``first_batch`` on (see
        ``batch_window_ids``). Read it with ``iter_torch_batches(batch_size)``. Each window carries
        ``columns``: by default what the world model takes (pixels, action, is_first); None: all.
        ``plans``: window plans instead, for ``GatherWindows`` (gather.py; what ``stream`` reads with
        ``replay.gather: reader``)."""
        return window_dataset(
            self.replay.root or "",
            seq_len=self.train.seq_len,
            window_ids=batch_window_ids(
                first_batch=first_batch,
                num_batches=num_batches,
                batch_size=self.train.batch_size,
                rank=rank,
                world_size=world_size,
            ),
            seed=self.seed,
            capacity_steps=self.replay.capacity_steps,
            refresh_seconds=self.replay.refresh_seconds,
            windows_per_read=self.train.windows_per_read,
            plans_per_read=self.train.plans_per_read,
            sampler_workers=self.train.sampler_workers,
            cpus_per_sampler=self.train.sampler_cpus,
            episode_filter=episode_filter,
            columns=columns,
            frame_cache=self.frame_cache(),
            plans=plans,
        )

    def stream(
        self,
        num_batches: int,
        first_batch: int = 0,
        episode_filter: Any = None,
        *,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """A trainer's torch batches (B, T, ...) of the world model's columns: ``dataset`` read with
        ``iter_torch_batches``, the rows gathered where ``replay.gather`` says."""
        reader = self.replay.gather == "reader"
        dataset = self.dataset(
            num_batches, first_batch, episode_filter, rank=rank, world_size=world_size, plans=reader
        )
        if not reader:
            return self.iter_torch_batches(dataset=dataset, pin_memory=pin_memory)
        from aime.replay.gather import iter_gathered

        return iter_gathered(
            executor_apart(dataset),
            self.sampler(episode_filter, TRAINING_COLUMNS),
            self.train.batch_size,
            prefetch_batches=self.train.prefetch_batches,
            pin_memory=pin_memory,
        )

    def iter_torch_batches(
        self,
        num_batches: int = 0,
        dataset: Any = None,
        *,
        pin_memory: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """``(B, T, ...)`` torch batches of ``dataset`` (default: ``self.dataset(num_batches)``):
        pixels uint8 (B, T, C, H, W), action (B, T, A), ... The stream's executor runs apart from
        this process (``executor_apart``)."""
        dataset = dataset if dataset is not None else self.dataset(num_batches)
        return executor_apart(dataset).iter_torch_batches(
            batch_size=self.train.batch_size,
            prefetch_batches=self.train.prefetch_batches,
            drop_last=True,
            pin_memory=pin_memory,
        )
