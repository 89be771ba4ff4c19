"""The Ray Data stream: torch batches, same windows as the in-process sampler, shards for Ray Train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aime.config import ReplayConfig, TrainConfig
from aime.replay import ReplayBuffer
from aime.replay.synthetic import write_synthetic_episodes


def _buffer(
    root, frame_cache: str | None = None, gather: str = "samplers", plans_per_read: int = 512
) -> ReplayBuffer:
    # Ray Train keeps the workers' CPUs away from Ray Data: on a 2-CPU Ray, 2 x 0.5 for the workers
    # leaves 1 CPU for the range reads and the sampler actor together.
    return ReplayBuffer(
        ReplayConfig(root=str(root), refresh_seconds=0.0, frame_cache=frame_cache, gather=gather),  # type: ignore[arg-type]
        TrainConfig(
            batch_size=4,
            seq_len=6,
            windows_per_read=8,
            plans_per_read=plans_per_read,
            sampler_cpus=0.5,
            prefetch_batches=1,
        ),
        seed=5,
    )


def test_torch_batches_carry_the_models_inputs_and_match_the_sampler(tmp_path, ray_local):
    write_synthetic_episodes(tmp_path, 4, length=20, image_size=16)
    buffer = _buffer(tmp_path)
    batches = list(buffer.iter_torch_batches(num_batches=6))
    assert len(batches) == 6
    batch = batches[0]
    # A trainer's stream reads what the world model takes, nothing more (TRAINING_COLUMNS).
    assert set(batch) == {"pixels", "action", "is_first", "episode_key"}
    assert batch["pixels"].shape == (4, 6, 3, 16, 16) and batch["pixels"].dtype == torch.uint8
    assert batch["action"].shape == (4, 6, 6) and batch["action"].dtype == torch.float32
    assert batch["is_first"].shape == (4, 6) and batch["is_first"].dtype == torch.bool

    def first_frames(keys, pixels):
        return {(int(k), bytes(np.asarray(p[0]))) for k, p in zip(keys, pixels, strict=True)}

    streamed = set().union(*(first_frames(b["episode_key"], b["pixels"]) for b in batches))
    direct = buffer.sampler().sample(np.arange(24))
    assert streamed == first_frames(direct["episode_key"], direct["pixels"])


def test_with_a_frame_cache_the_sampler_actors_fill_it_and_stream_the_same_batches(tmp_path, ray_local):
    write_synthetic_episodes(tmp_path / "store", 4, length=20, image_size=16)
    cached = list(_buffer(tmp_path / "store", str(tmp_path / "cache")).iter_torch_batches(num_batches=4))
    plain = list(_buffer(tmp_path / "store").iter_torch_batches(num_batches=4))

    assert len(cached) == 4 and _windows(cached) == _windows(plain)
    from aime.replay.frame_cache import _views

    filled = list((tmp_path / "cache").glob("*.frames"))  # the actors filled it: one entry per episode
    assert len(filled) == 4, filled
    for entry in filled:  # each holds the model's columns, whole
        columns = _views(np.memmap(entry, mode="r", dtype=np.uint8))
        assert set(columns) == {"pixels", "action", "is_first"} and columns["pixels"].shape == (20, 3, 16, 16)


def _windows(batches):  # each window whole, as bytes: the stream need not keep block order
    keys = ("episode_key", "pixels", "action", "is_first")
    return sorted(
        tuple(b[k][i].numpy().tobytes() for k in keys) for b in batches for i in range(len(b[keys[0]]))
    )


def test_gathered_by_the_reader_the_stream_carries_plans_and_gives_the_same_batches(tmp_path, ray_local):
    write_synthetic_episodes(tmp_path / "store", 4, length=20, image_size=16)
    reader = _buffer(tmp_path / "store", str(tmp_path / "cache"), gather="reader", plans_per_read=12)
    plans = reader.dataset(1, plans=True).take(1)[0]  # a plan is a few bytes, not the window's pixels
    assert set(plans) == {"id", "path", "start", "episode_id", "stamp"}
    # Plans come in blocks of plans_per_read (not windows_per_read's 8): 16 windows -> 12 + 4.
    blocks = reader.dataset(4, plans=True).iter_batches(batch_size=None)
    assert [len(block["id"]) for block in blocks] == [12, 4]
    gathered = list(reader.stream(num_batches=4))
    plain = list(_buffer(tmp_path / "store").stream(num_batches=4))
    assert len(gathered) == 4 and _windows(gathered) == _windows(plain)
    assert gathered[0]["pixels"].dtype == torch.uint8 and gathered[0]["pixels"].shape == (4, 6, 3, 16, 16)
    assert len(list((tmp_path / "cache").glob("*.frames"))) == 4  # the sampler actors decoded them


def test_the_reader_copies_several_batches_at_once_and_hands_them_out_whole_and_in_order(tmp_path, ray_local):
    from aime.replay.dataset import window_dataset
    from aime.replay.frame_cache import FrameCache
    from aime.replay.gather import iter_gathered
    from aime.replay.sampler import WindowSampler

    write_synthetic_episodes(tmp_path / "store", 4, length=20, image_size=16)
    root, cache, columns = str(tmp_path / "store"), FrameCache(str(tmp_path / "cache")), ("pixels", "action")
    # 5 batches of 4, copied 8 windows (two batches) at a time: chunks of 2 + 2 + 1 batches.
    plans = window_dataset(
        root,
        seq_len=6,
        num_windows=20,
        seed=5,
        plans_per_read=12,
        frame_cache=cache,
        columns=columns,
        sampler_workers=1,
        cpus_per_sampler=0.5,
        plans=True,
    )
    sampler = WindowSampler(root, 6, seed=5, columns=columns, frame_cache=cache)
    batches = list(iter_gathered(plans, sampler, 4, prefetch_batches=1, gather_windows=8))
    assert [tuple(b["pixels"].shape) for b in batches] == [(4, 6, 3, 16, 16)] * 5
    for k, batch in enumerate(
        batches
    ):  # batch k holds windows 4k..4k+3, as the in-process sampler draws them
        expected = sampler.sample(np.arange(4 * k, 4 * k + 4))
        assert all(np.array_equal(batch[name].numpy(), expected[name]) for name in columns)


def test_a_plan_whose_file_went_away_is_drawn_again_as_the_sampler_would(tmp_path):
    from aime.replay.gather import GatherWindows, PlanWindows
    from aime.replay.sampler import WindowSampler

    files = write_synthetic_episodes(tmp_path, 4, length=20, image_size=16)
    args: dict = dict(root=str(tmp_path), seq_len=6, seed=5, capacity_steps=None, refresh_seconds=0.0)
    ids = np.arange(12)
    plans = PlanWindows(**args, columns=("pixels", "action", "is_first"))({"data": ids})
    gone = str(plans["path"][0])
    assert gone.endswith(".parquet")
    Path(gone).unlink()  # evicted after planning, never cached (no frame cache here)
    columns = ("pixels", "action", "is_first")
    gathered = GatherWindows(WindowSampler(**args, columns=columns))(plans)
    expected = WindowSampler(**args, columns=columns).sample(ids)
    assert set(gathered) == set(expected) and len(files) == 4
    assert all(np.array_equal(gathered[k].numpy(), expected[k]) for k in expected)


def test_reading_from_the_cache_needs_a_cache():
    with pytest.raises(ValueError, match="gather=reader reads the frame cache: set replay.frame_cache"):
        ReplayConfig(gather="reader")


def test_each_ray_train_worker_gets_its_own_shard(tmp_path, ray_local):
    import signal

    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    write_synthetic_episodes(tmp_path, 3, length=20, image_size=8)
    buffer = _buffer(tmp_path)

    counts = tmp_path / "counts"
    counts.mkdir()

    def train_loop(config):
        import ray.train

        shard = ray.train.get_dataset_shard("replay")
        seen = 0
        for batch in shard.iter_torch_batches(batch_size=4, drop_last=True):
            assert batch["pixels"].shape == (4, 6, 3, 8, 8), batch["pixels"].shape
            seen += len(batch["pixels"])
        rank = ray.train.get_context().get_world_rank()
        (counts / f"rank{rank}").write_text(str(seen))

    trainer = TorchTrainer(
        train_loop,
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 0.5}),
        datasets={"replay": buffer.dataset(num_batches=8)},
        run_config=ray_train_run_config(tmp_path),
    )
    previous = signal.getsignal(signal.SIGINT)
    try:
        result = trainer.fit()
    finally:  # Ray Train's Ctrl-C handler holds its controller actor (and the test session's CPUs)
        signal.signal(signal.SIGINT, previous)
    assert result.error is None
    seen = {p.name: int(p.read_text()) for p in counts.iterdir()}
    assert set(seen) == {"rank0", "rank1"}
    assert all(0 < n < 32 for n in seen.values()), seen  # each worker reads a shard, not the stream
    assert sum(seen.values()) >= 24  # and together (nearly) all of it; drop_last may drop a batch each


def ray_train_run_config(tmp_path):
    from ray.train import RunConfig

    return RunConfig(storage_path=str(tmp_path / "ray_results"), name="shard-test")


def _executor_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("StreamingExecutor")]


def test_the_trainers_stream_runs_its_executor_outside_the_consuming_process(tmp_path, ray_local):
    """Ray Data's scheduling loop spins, holding the GIL, while the stream is backpressured; in a
    trainer's process that starves the training thread (aime.replay.dataset.executor_apart)."""
    write_synthetic_episodes(tmp_path, 2, length=20, image_size=8)
    buffer = _buffer(tmp_path)

    # The check sees the executor where it runs in this process (Ray names its thread so) ...
    batches, beside = _read_watching_executor_threads(
        buffer.dataset(num_batches=6).iter_batches(batch_size=4)
    )
    assert batches == 6 and beside, (
        "no StreamingExecutor thread seen: Ray renamed it, so this test checks nothing"
    )
    _wait_until(lambda: not _executor_threads())  # that executor's thread ends with its stream

    # ... and never sees it while the trainer's stream is read.
    batches, apart = _read_watching_executor_threads(buffer.iter_torch_batches(num_batches=6))
    assert batches == 6 and not apart, apart


def _read_watching_executor_threads(batches) -> tuple[int, set[str]]:
    """Read ``batches`` to the end while a thread looks for executor threads in this process every
    millisecond (an executor that is done before the first batch is taken is still seen); returns the
    batches read and the executor threads seen."""
    import threading
    import time

    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(_executor_threads())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, name="watch-executor-threads")
    watcher.start()
    try:
        count = sum(1 for _ in batches)
    finally:
        done.set()
        watcher.join()
    return count, seen


def _wait_until(condition, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
