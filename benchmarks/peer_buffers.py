"""The peers' rows of ``peers_replay.py``: TorchRL's ``ReplayBuffer`` and RLlib's ``EpisodeReplayBuffer``
loaded with aime's episodes (through aime's own reader) and sampled as (B, T) windows, each in a fresh
process that never starts Ray; also what those rows share (memory readings, timing, room checks)."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from bench_store import EPISODE_STEPS, IMAGE_SIZE

from aime.replay.store import ReplayStore
from aime.replay.windows import Window, read_windows

PEER_COLUMNS = ["pixels", "action", "reward", "is_first", "is_last", "is_terminal"]
FRAME_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE
HEADROOM = 1.25  # room asked for a peer's data beyond the raw frames, plus 2 GiB
Row = dict[str, Any]
MB = 1 / 2**20


# ---- shared by the peers (each in its own fresh process) -------------------------------------
def refuse_ray() -> None:
    """The peers' processes must not start Ray: another Ray on this machine is someone else's."""
    import ray

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("peers_replay: a peer's buffer tried to start Ray")

    ray.init = refuse  # type: ignore[assignment]


def memory() -> dict[str, float]:
    """This process's resident memory (MB) from /proc: all, anonymous, file-backed."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss": fields["VmRSS"], "anon": fields["RssAnon"], "file": fields["RssFile"] + fields["RssShmem"]}


def episodes_of(root: str) -> tuple[ReplayStore, list[Any]]:
    store = ReplayStore(root)
    return store, store.scan()


def read_episode(store: ReplayStore, entry: Any) -> dict[str, np.ndarray]:
    """One whole episode through aime's reader: pixels (N, 3, H, W), action (N, A), ..."""
    window = Window(entry.path, 0, entry.meta.episode_id)
    return {k: v[0] for k, v in read_windows(store, [window], entry.num_rows, PEER_COLUMNS).items()}


def timed_batches(draw: Any, batches: int, warmup: int, B: int) -> dict[str, float]:
    latencies = []
    for _ in range(warmup + batches):
        begin = time.perf_counter()
        draw()
        latencies.append(time.perf_counter() - begin)
    seconds = np.asarray(latencies[warmup:])
    return {
        "windows_per_second": round(B * len(seconds) / seconds.sum(), 1),
        "batch_ms_p50": round(1e3 * float(np.percentile(seconds, 50)), 2),
        "batch_ms_p99": round(1e3 * float(np.percentile(seconds, 99)), 2),
    }


# ---- TorchRL ---------------------------------------------------------------------------------
def torchrl_row(root: str, B: int, T: int, batches: int, warmup: int, repeats: int, scratch: str) -> Row:
    refuse_ray()
    import tensordict
    import torch
    import torchrl
    from tensordict import TensorDict
    from torchrl.data import LazyMemmapStorage, ReplayBuffer
    from torchrl.data.replay_buffers.samplers import SliceSampler

    logging.getLogger("torchrl").setLevel(logging.WARNING)  # its INFO lines go to stdout, the JSON's

    store, entries = episodes_of(root)
    before = memory()
    begin = time.perf_counter()
    buffer = ReplayBuffer(
        storage=LazyMemmapStorage(sum(e.num_rows for e in entries), scratch_dir=scratch),
        sampler=SliceSampler(slice_len=T, traj_key="episode", cache_values=True, strict_length=True),
        batch_size=B * T,
    )
    reading = 0.0
    for index, entry in enumerate(entries):
        start = time.perf_counter()
        arrays = read_episode(store, entry)
        reading += time.perf_counter() - start
        n = len(arrays["reward"])
        columns = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        columns["episode"] = torch.full((n,), index, dtype=torch.int64)
        buffer.extend(TensorDict(columns, batch_size=[n]))
    load = time.perf_counter() - begin
    loaded = memory()

    def draw() -> None:
        batch = buffer.sample().reshape(B, T)
        assert batch["pixels"].shape == (B, T, 3, IMAGE_SIZE, IMAGE_SIZE), batch["pixels"].shape
        assert bool((batch["episode"] == batch["episode"][:, :1]).all()), "a slice crossed episodes"

    runs = [timed_batches(draw, batches, warmup, B) for _ in range(repeats)]
    import ray

    return {
        "versions": {
            "torchrl": torchrl.__version__,
            "tensordict": tensordict.__version__,
            "torch": torch.__version__,
        },
        "runs": runs,
        "load_seconds": round(load, 2),
        "load_read_seconds": round(reading, 2),
        "rss_mb": {"before_load": before, "after_load": loaded, "after_sampling": memory()},
        "ray_initialized": ray.is_initialized(),
    }


# ---- RLlib -----------------------------------------------------------------------------------
def rllib_row(root: str, B: int, T: int, batches: int, warmup: int, repeats: int) -> Row:
    refuse_ray()
    import ray
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode
    from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

    store, entries = episodes_of(root)
    before = memory()
    begin = time.perf_counter()
    # Capacity counts agent steps: an episode of N rows holds N observations and N - 1 steps.
    buffer = EpisodeReplayBuffer(capacity=sum(e.num_rows for e in entries), batch_size_B=B, batch_length_T=T)
    reading = 0.0
    for entry in entries:
        start = time.perf_counter()
        arrays = read_episode(store, entry)
        reading += time.perf_counter() - start
        # RLDS rows (aime) -> RLlib's layout: N observations, N - 1 actions and rewards.
        episode = SingleAgentEpisode(
            observations=list(arrays["pixels"]),
            actions=list(arrays["action"][:-1]),
            rewards=list(arrays["reward"][:-1].astype(np.float64)),
            terminated=bool(arrays["is_terminal"][-1]),
            truncated=not bool(arrays["is_terminal"][-1]),
            len_lookback_buffer=0,
        )
        buffer.add(episode.to_numpy())
    load = time.perf_counter() - begin
    loaded = memory()

    def draw() -> None:
        batch = buffer.sample(batch_size_B=B, batch_length_T=T)
        assert batch["obs"].shape == (B, T, 3, IMAGE_SIZE, IMAGE_SIZE), batch["obs"].shape

    runs = [timed_batches(draw, batches, warmup, B) for _ in range(repeats)]
    return {
        "versions": {"ray": ray.__version__},
        "runs": runs,
        "load_seconds": round(load, 2),
        "load_read_seconds": round(reading, 2),
        "rss_mb": {"before_load": before, "after_load": loaded, "after_sampling": memory()},
        "ray_initialized": ray.is_initialized(),
    }


def in_fresh_process(function: Any, *args: Any) -> Row:
    """``function(*args)`` in a new process; a peer that cannot be imported is reported, not faked."""
    # spawn, not fork: the parent holds Ray's threads and sockets.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(function, *args).result()
        except (ImportError, OSError) as error:  # a missing package, or a C extension built for another torch
            return {"unavailable": f"{type(error).__name__}: {error}"}


def room_for(S: int, where: str) -> str | None:
    """None when S episodes' frames fit (memory for "memory", else the disk holding ``where``)."""
    import psutil

    need = S * EPISODE_STEPS * FRAME_BYTES * HEADROOM + 2 * 2**30
    have = psutil.virtual_memory().available if where == "memory" else shutil.disk_usage(where).free
    if need <= have:
        return None
    kind = "memory" if where == "memory" else "disk"
    return f"skipped: needs ~{need / 2**30:.1f} GiB of {kind}, {have / 2**30:.1f} GiB free"
