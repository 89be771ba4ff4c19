"""``aime collect``: rollout actors fill the replay store with a requested number of episodes.

The driver hands out slots (episode indices) to actors one batch at a time and supervises them. Two
layers keep a collection alive: Ray restarts a crashed actor and retries its call; if that fails too
(restarts used up, node gone), the driver replaces the actor and re-queues the batch. A slot that
fails ``max_attempts_per_episode`` times aborts the run with the error instead of looping forever.

Each actor holds ``CALLS_IN_FLIGHT`` batches (``remote.py``): while one batch's episodes are
compressed and written, the next one already steps (``aime.actors.rollout``), so the environments
never wait on storage.

A frame is one rendered observation, that is one agent step; each agent step runs ``action_repeat``
physics control steps. The progress bar, the summary, the metrics and ``benchmarks/rollout.py``
count frames in that one sense.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from tqdm import tqdm

from aime import metrics as M
from aime.actors.lockstep_size import envs_per_worker, resolve_envs_per_worker
from aime.actors.placement import PlacementWatch
from aime.actors.policy import make_policy
from aime.actors.remote import CALLS_IN_FLIGHT, actor_request, rollout_actor
from aime.actors.rollout import EpisodeRecord
from aime.config import Config
from aime.envs import make_env_from_config
from aime.envs.tasks import check_env_config
from aime.replay.stats import replay_stats
from aime.replay.store import ReplayStore
from aime.run import ray_metrics
from aime.run.rundir import MetricsWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectSummary:
    episodes: int
    steps: int  # agent steps = frames (one rendered observation each)
    physics_steps: int  # agent steps x action_repeat
    seconds: float
    steps_per_second: float
    frames_per_second: float  # = steps_per_second: a frame is an agent step's observation
    bytes: int
    worker_failures: int
    evicted: int
    replay_root: str
    first_frame_seconds: float  # until the first frames were counted: actor start-up, roughly

    def lines(self) -> list[str]:
        return [
            f"episodes      {self.episodes}",
            f"seconds       {self.seconds:.1f}  (first frames at {self.first_frame_seconds:.1f})",
            f"frames        {self.steps}  ({self.frames_per_second:,.0f}/s; one rendered observation each)",
            f"physics steps {self.physics_steps}  (action repeat included)",
            f"bytes on disk {self.bytes:,}  ({self.bytes / max(self.steps, 1):,.0f} per frame)",
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
    c = resolve_envs_per_worker(cfg.collect, cfg.env)
    cfg = replace(cfg, collect=c)
    episodes = c.episodes if episodes is None else episodes
    assert cfg.replay.root and cfg.run_id, "collect() needs a config resolved by create_run_dir()"
    if episodes < 1 or c.workers < 1 or envs_per_worker(c) < 1:
        raise ValueError(f"collect needs episodes, workers and envs_per_worker >= 1, got {c}")
    check_env_config(cfg.env.task, cfg.env.image_size, cfg.env.camera)
    actors = _Actors(cfg, phase)
    end = first_episode + episodes
    # Fewer episodes than environments: spread them over all actors rather than fill a few.
    size = min(envs_per_worker(c), -(-episodes // c.workers))
    queue = deque([list(range(s, min(s + size, end))) for s in range(first_episode, end, size)])
    store = ReplayStore(cfg.replay.root)
    bar = tqdm(total=episodes, unit="ep", disable=not progress, dynamic_ncols=True)
    run = _Collection(cfg, cfg.run_id, phase, actors, queue, store, metrics, bar)
    try:
        run.loop(stop)
    finally:
        bar.close()
        actors.kill_all()
    seconds = time.monotonic() - run.start
    return _summary(cfg, run.records, seconds, run.failures, run.evicted, run.first_frame)


@dataclass
class _Collection:
    """One collection's loop and its state: episode slots queued and in flight, the episodes that came
    back, failed calls (their slots re-queued on a replacement actor), evictions, first frames."""

    cfg: Config
    run_id: str
    phase: str
    actors: _Actors
    queue: deque[list[int]]
    store: ReplayStore
    metrics: MetricsWriter | None
    bar: Any  # tqdm
    in_flight: dict[Any, tuple[int, int, list[int]]] = field(
        default_factory=dict
    )  # ref -> (index, gen, slots)
    attempts: dict[int, int] = field(default_factory=dict)
    records: list[EpisodeRecord] = field(default_factory=list)
    failures: int = 0
    evicted: int = 0
    first_frame: float | None = None
    start: float = field(default_factory=time.monotonic)

    def loop(self, stop: threading.Event | None) -> None:
        """Until every slot is done; once ``stop`` is set, only those in flight finish."""
        import ray

        last_log = self.start
        while self.queue or self.in_flight:
            if stop is not None and stop.is_set():
                self.queue.clear()  # finish what is in flight, start nothing new
            _hand_out(self.actors.handles, self.actors.generation, self.queue, self.in_flight)
            done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=self.cfg.log_every_seconds)
            for ref in done:
                self._receive(ref)
            now = time.monotonic()
            if now - last_log >= self.cfg.log_every_seconds or not (self.queue or self.in_flight):
                last_log = now
                self._log(now)

    def _receive(self, ref: Any) -> None:
        """One finished call: its episodes counted, or (the actor failed) its slots re-queued."""
        import ray

        index, generation, slots = self.in_flight.pop(ref)
        try:
            batch = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as error:
            self.failures += 1
            ray_metrics.worker_failed(self.run_id, self.phase)
            _requeue(slots, self.attempts, self.queue, error, self.cfg.collect.max_attempts_per_episode)
            self.actors.replace(index, generation)
            return
        self.records += batch
        self.evicted += len(self.store.evict(self.cfg.replay.capacity_steps))
        self.bar.update(len(batch))
        _export_batch(self.run_id, self.phase, index, batch, self.store)

    def _log(self, now: float) -> None:
        """Frames/s so far on the bar, Ray's metrics and the run's metrics file."""
        self.actors.placement.check()
        steps = _live_steps(self.actors.handles, self.records)
        if steps and self.first_frame is None:
            self.first_frame = now - self.start
        seconds = now - self.start
        self.bar.set_postfix_str(f"{steps / seconds:,.0f} frames/s", refresh=False)
        ray_metrics.collection_rate(self.run_id, self.phase, steps / seconds)
        if self.metrics:
            self.metrics.write(steps, _metrics(self.records, steps, self.cfg, seconds, self.failures))


class _Actors:
    """The collection's rollout actors, by index; a failed one is replaced once per generation."""

    def __init__(self, cfg: Config, phase: str):
        c = cfg.collect
        self.cfg, self.phase = cfg, phase
        self.kwargs: dict[str, Any] = dict(
            make_env=functools.partial(make_env_from_config, cfg.env),
            make_policy=functools.partial(make_policy, c.policy),
            replay=cfg.replay,
            run_id=cfg.run_id,
            seed=cfg.seed,
            task=cfg.env.task,
            num_envs=envs_per_worker(c),
            egl_device=cfg.env.egl_device,
        )
        self.placement = PlacementWatch(actor_request(c), c.placement_warning_s)
        self.generation = [0] * c.workers
        self.handles = [self._start(i) for i in range(c.workers)]

    def _start(self, index: int) -> Any:
        name = actor_name(self.cfg.run_id or "", index, self.generation[index], phase=self.phase)
        actor = rollout_actor(self.cfg.collect, name=name, worker_id=index, **self.kwargs)
        self.placement.watch(actor, name)
        return actor

    def replace(self, index: int, generation: int) -> None:
        """Replace actor ``index`` after a failed call of ``generation`` (its other call fails too:
        replace it only once)."""
        import ray

        if generation == self.generation[index]:
            ray.kill(self.handles[index], no_restart=True)
            self.generation[index] += 1
            self.handles[index] = self._start(index)

    def kill_all(self) -> None:
        import ray

        for actor in self.handles:
            ray.kill(actor, no_restart=True)


def _summary(
    cfg: Config,
    records: list[EpisodeRecord],
    seconds: float,
    failures: int,
    evicted: int,
    first_frame: float | None,
) -> CollectSummary:
    steps = sum(r.steps for r in records)
    return CollectSummary(
        episodes=len(records),
        steps=steps,
        physics_steps=steps * cfg.env.action_repeat,
        seconds=seconds,
        steps_per_second=steps / seconds,
        frames_per_second=steps / seconds,
        bytes=sum(r.bytes for r in records),
        worker_failures=failures,
        first_frame_seconds=round(first_frame if first_frame is not None else seconds, 2),
        evicted=evicted,
        replay_root=cfg.replay.root or "",
    )


def actor_name(run_id: str, index: int, generation: int = 0, *, phase: str = "rollout") -> str:
    """Rollout actors are named, so the dashboard (and tests) can find them."""
    return f"aime-{phase}-{run_id}-{index}-{generation}"


def _hand_out(actors: list[Any], generation: list[int], queue: deque, in_flight: dict) -> None:
    """Give every actor up to ``CALLS_IN_FLIGHT`` batches, in slot order."""
    held = [0] * len(actors)
    for index, _, _ in in_flight.values():
        held[index] += 1
    for _ in range(CALLS_IN_FLIGHT):
        for index, actor in enumerate(actors):
            if queue and held[index] < CALLS_IN_FLIGHT:
                slots = queue.popleft()
                in_flight[actor.run_episodes.remote(slots)] = (index, generation[index], slots)
                held[index] += 1


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


def _export_batch(
    run_id: str, phase: str, actor: int, batch: list[EpisodeRecord], store: ReplayStore
) -> None:
    """A finished batch and the store's new size, as Ray dashboard series (``aime.run.ray_metrics``)."""
    frames = sum(r.steps for r in batch)
    ray_metrics.collected(run_id, phase, actor, episodes=len(batch), frames=frames)
    stats = replay_stats(store)  # one listing: the store keeps the footers it has read
    ray_metrics.replay_size(store.root, episodes=stats.episodes, steps=stats.steps, size_bytes=stats.bytes)


def _metrics(
    records: list[EpisodeRecord], steps: int, cfg: Config, seconds: float, failures: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        M.ENV_EPISODES: len(records),
        M.ENV_STEPS: steps,
        M.ENV_FRAMES: steps,  # rendered observations, as the console and benchmarks count them
        M.ENV_STEPS_PER_SECOND: round(steps / seconds, 2),
        M.ENV_FRAMES_PER_SECOND: round(steps / seconds, 2),
        M.ENV_WORKER_FAILURES: failures,
    }
    if records:
        out[M.ENV_EPISODE_RETURN] = round(
            sum(r.episode_return for r in records[-10:]) / len(records[-10:]), 3
        )
    return out
