"""RolloutWorker: several environments stepped together by one policy, episodes written to replay.

A plain class: tests use it in-process; ``aime.actors.remote`` makes it a Ray actor. Work arrives as
episode *slots* (global episode indices). A slot fixes the episode's seeds and its file names, so a
slot retried after a crash rewrites the same episode under the same name: no duplicates, no gaps.

Two kinds of threads do the work. The environment thread steps the ``num_envs`` environments in lockstep
and renders their frames together (``aime.envs.lockstep``); writer threads compress and write
finished chunks, so Parquet and zstd never stall stepping. ``run_episodes`` returns once its episodes
are on storage, but frees the environment thread as soon as its stepping is done: a second call
queued by the driver steps while the first one's episodes are written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np

from aime.actors.policy import Policy
from aime.actors.recorder import EpisodeRecorder
from aime.config import ReplayConfig
from aime.envs.dmc import DMCEnv
from aime.envs.egl import configure_egl
from aime.envs.lockstep import LockstepEnvs
from aime.replay.episode import EpisodeArrays, episode_table
from aime.replay.schema import EpisodeMetadata
from aime.replay.store import ReplayStore
from aime.run.seeding import derive_seed

T = TypeVar("T")
EnvFactory = Callable[[int], DMCEnv]  # seed -> env
PolicyFactory = Callable[[gym.spaces.Box, int], Policy]  # (action space, num envs) -> policy


@dataclass(frozen=True)
class EpisodeRecord:
    slot: int
    episode_id: str
    steps: int  # agent steps (rows - 1: the final observation is not a step)
    episode_return: float
    files: tuple[str, ...]
    bytes: int
    policy_version: int


def episode_name(run_id: str, slot: int) -> str:
    return f"{run_id}-{slot:06d}"


@dataclass
class _Stepped:
    """An episode whose stepping is done; its chunks may still be on their way to storage."""

    slot: int
    episode_return: float
    writes: list[Future]  # each -> (path, bytes, rows)
    policy_version: int


class RolloutWorker:
    def __init__(
        self,
        worker_id: int,
        *,
        make_env: EnvFactory,
        make_policy: PolicyFactory,
        replay: ReplayConfig,
        run_id: str,
        seed: int,
        task: str,
        num_envs: int = 1,
        egl_device: str | int | None = None,
    ):
        """``egl_device`` (``env.egl_device``), when given, is settled here with this worker's index as
        its spread index, before the first environment: actors on a multi-GPU node share out its GPUs
        for rendering (``aime/envs/egl.py``). None leaves it to the environments' own setting."""
        assert replay.root, "RolloutWorker needs a resolved replay.root"
        init_start = time.time()
        if egl_device is not None:
            configure_egl(egl_device, spread_index=worker_id)
        self.worker_id = worker_id
        self.run_id, self.seed, self.task = run_id, seed, task
        self.replay = replay
        self.store = ReplayStore(replay.root)
        # An EGL context belongs to the thread that made it current, and a threaded actor runs each
        # call on any pool thread: all environment work therefore happens on this one thread.
        self._env_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rollout-{worker_id}")
        # Two writers: the episodes of a lockstep batch all end together, and zstd releases the GIL.
        self._writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"writer-{worker_id}")
        seeds = [derive_seed(seed, "actor", worker_id, i) for i in range(num_envs)]
        self.envs = self._on_env_thread(lambda: LockstepEnvs.from_factory(make_env, seeds))
        env = self.envs.envs[0]
        assert isinstance(env.action_space, gym.spaces.Box), env.action_space
        self.action_dim = int(env.action_space.shape[0])
        self.state_dim = int(env.observation_space["state"].shape[0])  # type: ignore[index]
        self.concept_names: tuple[str, ...] = tuple(env.concepts.names)
        self._rows_hint = env.max_episode_steps + 1 if env.max_episode_steps else 1024
        self.policy = make_policy(env.action_space, num_envs)
        self._pending_weights: tuple[Any, int] | None = None
        self._lock = threading.Lock()
        self._steps_done = 0
        # Start-up, which bounds short collections end to end: process and imports, then __init__.
        self.startup = {
            "process_to_init_seconds": round(init_start - _process_start_time(), 3),
            "init_seconds": round(time.time() - init_start, 3),
        }

    # ---- control, callable while run_episodes is running (threaded actor) --------------------
    def set_policy_weights(self, weights: Any, version: int) -> None:
        with self._lock:
            self._pending_weights = (weights, version)

    def steps_done(self) -> int:
        return self._steps_done

    def ready(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "gl": self._on_env_thread(self.envs.gl_renderer),
            **self.startup,
        }

    # ---- work --------------------------------------------------------------------------------
    def run_episodes(self, slots: list[int]) -> list[EpisodeRecord]:
        """Run one episode per slot, up to ``num_envs`` at a time in lockstep; return once written."""
        stepped = self._on_env_thread(lambda: self._run_episodes(slots))
        return [self._record(episode) for episode in stepped]

    def _on_env_thread(self, fn: Callable[[], T]) -> T:
        return self._unpicklable_errors(self._env_thread.submit(fn))

    def _unpicklable_errors(self, future: Future[T]) -> T:
        try:
            return future.result()
        except Exception as error:
            # Some errors (EGL's) hold ctypes pointers and cannot be pickled back to the caller.
            raise RuntimeError(f"rollout worker {self.worker_id}: {type(error).__name__}: {error}") from None

    def _run_episodes(self, slots: list[int]) -> list[_Stepped]:
        queue = list(slots)
        stepped: list[_Stepped] = []
        while queue:
            batch, queue = queue[: len(self.envs)], queue[len(self.envs) :]
            stepped += self._run_batch(batch)
        return stepped

    def _run_batch(self, slots: list[int]) -> list[_Stepped]:
        recorders = [
            EpisodeRecorder(self.action_dim, self.replay.chunk_steps, self._rows_hint) for _ in slots
        ]
        episodes = [_Stepped(slot, 0.0, [], 0) for slot in slots]
        active = list(range(len(slots)))
        pixels, starts = self.envs.reset(active, [derive_seed(self.seed, "episode", s) for s in slots])
        for i, (state, info) in enumerate(starts):
            self.policy.begin_episode(i, derive_seed(self.seed, "policy", slots[i]))
            recorders[i].start(pixels[i], state, info)
        states = np.stack([state for state, _ in starts])
        while active:
            self._apply_pending_weights()
            actions = self.policy.act({"pixels": pixels, "state": states}, np.asarray(active))
            pixels, results = self.envs.step(active, actions)
            version, still_active = self.policy.version, []
            for k, (i, action, (state, reward, terminated, truncated, info)) in enumerate(
                zip(active, actions, results, strict=True)
            ):
                episodes[i].episode_return += float(reward)
                episode = episodes[i]
                for chunk in recorders[i].step(
                    action, float(reward), pixels[k], state, info, terminated, truncated, version
                ):
                    episode.writes.append(
                        self._writer.submit(self._write, episode.slot, len(episode.writes), chunk)
                    )
                if recorders[i].active:
                    still_active.append(k)
            self._steps_done += len(active)
            if len(still_active) < len(active):  # some episodes ended: keep the others' rows only
                pixels = pixels[still_active]
                active = [active[k] for k in still_active]
            states = np.stack([results[k][0] for k in still_active]) if still_active else states
        for episode in episodes:
            episode.policy_version = self.policy.version
        return episodes

    def _record(self, episode: _Stepped) -> EpisodeRecord:
        written = [self._unpicklable_errors(write) for write in episode.writes]
        return EpisodeRecord(
            slot=episode.slot,
            episode_id=episode_name(self.run_id, episode.slot),
            steps=sum(rows for _, _, rows in written) - 1,
            episode_return=episode.episode_return,
            files=tuple(path for path, _, _ in written),
            bytes=sum(size for _, size, _ in written),
            policy_version=episode.policy_version,
        )

    def _write(self, slot: int, chunk_index: int, chunk: EpisodeArrays) -> tuple[str, int, int]:
        meta = EpisodeMetadata(
            episode_id=episode_name(self.run_id, slot),
            task=self.task,
            seed=derive_seed(self.seed, "episode", slot),
            length=len(chunk),
            pixel_shape=tuple(chunk.pixels.shape[1:]),  # type: ignore[arg-type]
            action_dim=self.action_dim,
            state_dim=self.state_dim,
            concepts=self.concept_names,
            actor_id=self.worker_id,
            policy_version=int(chunk.policy_version.max()),
            chunk_index=chunk_index,
            run_id=self.run_id,
            extra={"written_at": time.time()},
        )
        name = f"{episode_name(self.run_id, slot)}-{chunk_index:03d}"
        path = self.store.write(
            name,
            episode_table(chunk, meta),
            row_group_steps=self.replay.row_group_steps,
            compression=self.replay.compression,
            compression_level=self.replay.compression_level,
        )
        return path, self.store.fs.get_file_info(path).size, len(chunk)

    def _apply_pending_weights(self) -> None:
        if self._pending_weights is None:
            return
        with self._lock:
            weights, version = self._pending_weights
            self._pending_weights = None
        self.policy.set_weights(weights, version)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._on_env_thread(self.envs.close)
        self._env_thread.shutdown()


def _process_start_time() -> float:
    """When this process started (Linux: its /proc entry's creation), else now."""
    try:
        return os.stat(f"/proc/{os.getpid()}").st_ctime
    except OSError:
        return time.time()
