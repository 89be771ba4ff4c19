"""``aime collect``: rollout actors fill the replay store with a requested number of episodes.

The driver hands out slots (episode indices) to actors one batch at a time and supervises them. Two
layers keep a collection alive: Ray restarts a crashed actor and retries its call; if that fails too
(restarts used up, node gone), the driver replaces the actor and re-queues the batch. A slot that
fails ``max_attempts_per_episode`` times aborts the run with the error instead of looping forever.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from aime import metrics as M
from aime.actors.policy import make_policy
from aime.actors.remote import rollout_actor
from aime.actors.rollout import EpisodeRecord
from aime.config import Config
from aime.envs import make_env_from_config
from aime.envs.tasks import check_env_config
from aime.replay.store import ReplayStore
from aime.run.rundir import MetricsWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectSummary:
    episodes: int
    steps: int  # agent steps
    env_frames: int  # agent steps x action_repeat (the DMC convention)
    seconds: float
    steps_per_second: float
    frames_per_second: float
    bytes: int
    worker_failures: int
    evicted: int
    replay_root: str

    def lines(self) -> list[str]:
        return [
            f"episodes      {self.episodes}",
            f"agent steps   {self.steps}  ({self.steps_per_second:,.0f}/s)",
            f"env frames    {self.env_frames}  ({self.frames_per_second:,.0f}/s, action repeat included)",
            f"bytes on disk {self.bytes:,}  ({self.bytes / max(self.steps, 1):,.0f} per step)",
            f"failures      {self.worker_failures} (recovered)   evicted episodes {self.evicted}",
            f"replay root   {self.replay_root}",
        ]


class CollectionError(RuntimeError):
    pass


def collect(
    cfg: Config,
    metrics: MetricsWriter | None = None,
    progress: bool = True,
    *,
    episodes: int | None = None,
    first_episode: int = 0,
    phase: str = "rollout",
    stop: threading.Event | None = None,
) -> CollectSummary:
    """Collect ``episodes`` (default ``cfg.collect.episodes``) episodes into ``cfg.replay.root``; Ray
    must be initialised.

    Episode slots ``first_episode ...`` fix each episode's seed and file name, so a later phase (online
    collection during training, ``phase="online"``) continues the numbering instead of overwriting.
    Setting ``stop`` ends the collection early: no new episodes start, those in flight finish.
    """
    import ray

    c = cfg.collect
    episodes = c.episodes if episodes is None else episodes
    assert cfg.replay.root and cfg.run_id, "collect() needs a config resolved by create_run_dir()"
    if episodes < 1 or c.workers < 1 or c.envs_per_worker < 1:
        raise ValueError(f"collect needs episodes, workers and envs_per_worker >= 1, got {c}")
    check_env_config(cfg.env.task, cfg.env.image_size, cfg.env.camera)
    worker_kwargs: dict[str, Any] = dict(
        make_env=functools.partial(make_env_from_config, cfg.env),
        make_policy=functools.partial(make_policy, c.policy),
        replay=cfg.replay,
        run_id=cfg.run_id,
        seed=cfg.seed,
        task=cfg.env.task,
        num_envs=c.envs_per_worker,
    )
    generation = [0] * c.workers

    def start_actor(index: int) -> Any:
        name = actor_name(cfg.run_id or "", index, generation[index], phase=phase)
        return rollout_actor(c, name=name, worker_id=index, **worker_kwargs)

    actors = [start_actor(i) for i in range(c.workers)]
    end = first_episode + episodes
    queue = deque(
        [
            list(range(s, min(s + c.envs_per_worker, end)))
            for s in range(first_episode, end, c.envs_per_worker)
        ]
    )
    attempts: dict[int, int] = {}
    in_flight: dict[Any, tuple[int, list[int]]] = {}
    records: list[EpisodeRecord] = []
    failures = evicted = 0
    store = ReplayStore(cfg.replay.root)
    bar = tqdm(total=episodes, unit="ep", disable=not progress, dynamic_ncols=True)
    start = last_log = time.monotonic()
    try:
        while queue or in_flight:
            if stop is not None and stop.is_set():
                queue.clear()  # finish what is in flight, start nothing new
            busy = {index for index, _ in in_flight.values()}
            for index in range(len(actors)):
                if queue and index not in busy:
                    slots = queue.popleft()
                    in_flight[actors[index].run_episodes.remote(slots)] = (index, slots)
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=cfg.log_every_seconds)
            for ref in done:
                index, slots = in_flight.pop(ref)
                try:
                    batch = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as error:
                    failures += 1
                    _requeue(slots, attempts, queue, error, c.max_attempts_per_episode)
                    ray.kill(actors[index], no_restart=True)
                    generation[index] += 1
                    actors[index] = start_actor(index)
                    continue
                records += batch
                evicted += len(store.evict(cfg.replay.capacity_steps))
                bar.update(len(batch))
            now = time.monotonic()
            if now - last_log >= cfg.log_every_seconds or not (queue or in_flight):
                last_log = now
                steps = _live_steps(actors, records)
                bar.set_postfix_str(
                    f"{steps * cfg.env.action_repeat / (now - start):,.0f} env frames/s", refresh=False
                )
                if metrics:
                    metrics.write(steps, _metrics(records, steps, cfg, now - start, failures))
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor, no_restart=True)
    seconds = time.monotonic() - start
    steps = sum(r.steps for r in records)
    return CollectSummary(
        episodes=len(records),
        steps=steps,
        env_frames=steps * cfg.env.action_repeat,
        seconds=seconds,
        steps_per_second=steps / seconds,
        frames_per_second=steps * cfg.env.action_repeat / seconds,
        bytes=sum(r.bytes for r in records),
        worker_failures=failures,
        evicted=evicted,
        replay_root=cfg.replay.root,
    )


def actor_name(run_id: str, index: int, generation: int = 0, *, phase: str = "rollout") -> str:
    """Rollout actors are named, so the dashboard (and tests) can find them."""
    return f"aime-{phase}-{run_id}-{index}-{generation}"


def _requeue(slots: list[int], attempts: dict[int, int], queue: deque, error: Exception, limit: int) -> None:
    for slot in slots:
        attempts[slot] = attempts.get(slot, 0) + 1
        if attempts[slot] >= limit:
            raise CollectionError(
                f"episode slot {slot} failed {attempts[slot]} times; last error: {error}"
            ) from error
    log.warning("collect: a worker failed (%s); re-queueing episodes %s", type(error).__name__, slots)
    queue.appendleft(slots)


def _live_steps(actors: list[Any], records: list[EpisodeRecord]) -> int:
    """Agent steps so far, from the actors' own counters where they answer quickly."""
    import ray

    refs = [actor.steps_done.remote() for actor in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.5)
    live = 0
    for ref in ready:
        try:
            live += ray.get(ref)
        except ray.exceptions.RayError:  # a dead or restarting actor: its episodes get re-run anyway
            pass
    return max(live, sum(r.steps for r in records))


def _metrics(
    records: list[EpisodeRecord], steps: int, cfg: Config, seconds: float, failures: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        M.ENV_EPISODES: len(records),
        M.ENV_STEPS: steps,
        M.ENV_FRAMES: steps * cfg.env.action_repeat,
        M.ENV_STEPS_PER_SECOND: round(steps / seconds, 2),
        M.ENV_FRAMES_PER_SECOND: round(steps * cfg.env.action_repeat / seconds, 2),
        M.ENV_WORKER_FAILURES: failures,
    }
    if records:
        out[M.ENV_EPISODE_RETURN] = round(
            sum(r.episode_return for r in records[-10:]) / len(records[-10:]), 3
        )
    return out
