"""RolloutWorker: several environments stepped together by one policy, episodes written to replay.

A plain class: tests use it in-process; ``aime.actors.remote`` makes it a Ray actor. Work arrives as
episode *slots* (global episode indices). A slot fixes the episode's seeds and its file names, so a
slot retried after a crash rewrites the same episode under the same name: no duplicates, no gaps.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np

from aime.actors.policy import Policy
from aime.actors.recorder import EpisodeRecorder
from aime.config import ReplayConfig
from aime.replay.episode import EpisodeArrays, episode_table
from aime.replay.schema import EpisodeMetadata
from aime.replay.store import ReplayStore
from aime.run.seeding import derive_seed

T = TypeVar("T")
_NO_CONCEPTS = SimpleNamespace(names=())
EnvFactory = Callable[[int], gym.Env]  # seed -> env
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
    ):
        assert replay.root, "RolloutWorker needs a resolved replay.root"
        self.worker_id = worker_id
        self.run_id, self.seed, self.task = run_id, seed, task
        self.replay = replay
        self.store = ReplayStore(replay.root)
        # An EGL context belongs to the thread that made it current, and a threaded actor runs each
        # call on any pool thread: all environment work therefore happens on this one thread.
        self._env_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rollout-{worker_id}")
        self.envs = self._on_env_thread(
            lambda: [make_env(derive_seed(seed, "actor", worker_id, i)) for i in range(num_envs)]
        )
        env = self.envs[0]
        assert isinstance(env.action_space, gym.spaces.Box), env.action_space
        self.action_dim = int(env.action_space.shape[0])
        self.state_dim = int(env.observation_space["state"].shape[0])  # type: ignore[index]
        # Envs without concepts (not from aime.envs) record none.
        self.concept_names: tuple[str, ...] = tuple(getattr(env.unwrapped, "concepts", _NO_CONCEPTS).names)
        self.policy = make_policy(env.action_space, num_envs)
        self._pending_weights: tuple[Any, int] | None = None
        self._lock = threading.Lock()
        self._steps_done = 0

    # ---- control, callable while run_episodes is running (threaded actor) --------------------
    def set_policy_weights(self, weights: Any, version: int) -> None:
        with self._lock:
            self._pending_weights = (weights, version)

    def steps_done(self) -> int:
        return self._steps_done

    def ready(self) -> dict[str, int]:
        return {"worker_id": self.worker_id, "pid": os.getpid()}

    # ---- work --------------------------------------------------------------------------------
    def run_episodes(self, slots: list[int]) -> list[EpisodeRecord]:
        """Run one episode per slot, up to ``num_envs`` at a time in lockstep."""
        return self._on_env_thread(lambda: self._run_episodes(slots))

    def _on_env_thread(self, fn: Callable[[], T]) -> T:
        try:
            return self._env_thread.submit(fn).result()
        except Exception as error:
            # Some errors (EGL's) hold ctypes pointers and cannot be pickled back to the caller.
            raise RuntimeError(f"rollout worker {self.worker_id}: {type(error).__name__}: {error}") from None

    def _run_episodes(self, slots: list[int]) -> list[EpisodeRecord]:
        queue = list(slots)
        records: list[EpisodeRecord] = []
        while queue:
            batch, queue = queue[: len(self.envs)], queue[len(self.envs) :]
            records += self._run_batch(batch)
        return records

    def _run_batch(self, slots: list[int]) -> list[EpisodeRecord]:
        envs = self.envs[: len(slots)]
        recorders = [EpisodeRecorder(self.action_dim, self.replay.chunk_steps) for _ in envs]
        observations: list[dict[str, np.ndarray]] = []
        written: list[list[tuple[str, int, int]]] = [[] for _ in slots]
        returns = [0.0] * len(slots)
        for i, (env, slot) in enumerate(zip(envs, slots, strict=True)):
            obs, info = env.reset(seed=derive_seed(self.seed, "episode", slot))
            self.policy.begin_episode(i, derive_seed(self.seed, "policy", slot))
            recorders[i].start(obs, info)
            observations.append(obs)
        active = np.arange(len(slots))
        while len(active):
            self._apply_pending_weights()
            batch = {k: np.stack([observations[i][k] for i in active]) for k in observations[0]}
            actions = self.policy.act(batch, active)
            still_active = []
            for action, i in zip(actions, active.tolist(), strict=True):
                obs, reward, terminated, truncated, info = envs[i].step(action)
                observations[i] = obs
                returns[i] += float(reward)
                for chunk in recorders[i].step(
                    action, float(reward), obs, info, terminated, truncated, self.policy.version
                ):
                    written[i].append(self._write(slots[i], len(written[i]), chunk))
                if recorders[i].active:
                    still_active.append(i)
            self._steps_done += len(active)
            active = np.array(still_active, dtype=np.int64)
        return [
            EpisodeRecord(
                slot=slot,
                episode_id=episode_name(self.run_id, slot),
                steps=sum(rows for _, _, rows in written[i]) - 1,
                episode_return=returns[i],
                files=tuple(path for path, _, _ in written[i]),
                bytes=sum(size for _, size, _ in written[i]),
                policy_version=self.policy.version,
            )
            for i, slot in enumerate(slots)
        ]

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
        def close_all() -> None:
            for env in self.envs:
                env.close()

        self._on_env_thread(close_all)
        self._env_thread.shutdown()
