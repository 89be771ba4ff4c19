"""Online collection: rollout actors keep writing episodes while the trainers sample the store.

    aime run:  collect(episodes)  ->  OnlineCollection.start()  ->  train(...)  ->  OnlineCollection.stop()
                                       collect(online_episodes, first_episode=episodes, phase="online")
                                       in a driver thread; samplers see new files within
                                       replay.refresh_seconds

The episodes continue the run's numbering (seeds and file names never collide with the first phase),
are split into training / held-out by episode id like every other, and the collection stops early,
after the episodes in flight, when training ends first.

When the actors render on the trainer's GPU, the online phase packs the configured environments
(workers x envs_per_worker) into as few actors as it can, 16 environments each: the GPU time-slices
between each rendering EGL context and the trainer's CUDA context, whatever a context renders. Beside
a bf16 matmul loop on one H200, 12 renderers of one environment each left it 0.47x of its rate
alone; one renderer of 16 lockstep environments, rendering 2.5x the frames, 0.85x
(``benchmarks/render_contention.py``). On a CPU (llvmpipe) rendering is the work itself, so the
actors stay as configured.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

from aime.actors.collect import CollectSummary, collect
from aime.actors.lockstep_size import (
    ENVS_PER_GPU_ACTOR,
    envs_per_worker,
    renders_on_nvidia_gpu,
    resolve_envs_per_worker,
)
from aime.config import CollectConfig, Config
from aime.run.rundir import MetricsWriter

log = logging.getLogger(__name__)


class OnlineCollection:
    def __init__(self, cfg: Config, metrics_path: Path):
        self.cfg = cfg
        self.metrics_path = metrics_path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summary: CollectSummary | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        assert self._thread is None, "OnlineCollection.start() called twice"
        self._thread = threading.Thread(target=self._run, name="aime-online-collect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        metrics = MetricsWriter(self.metrics_path)
        on_gpu = renders_on_nvidia_gpu(self.cfg.env)
        configured = resolve_envs_per_worker(self.cfg.collect, self.cfg.env, on_gpu)
        cfg = replace(self.cfg, collect=online_actors(configured, on_gpu))
        if cfg.collect != configured:
            log.info(
                "online collection: %d actors x %d environments",
                cfg.collect.workers,
                cfg.collect.envs_per_worker,
            )
        try:
            self.summary = collect(
                cfg,
                metrics,
                progress=False,  # the training progress bar owns the terminal
                episodes=self.cfg.collect.online_episodes,
                first_episode=self.cfg.collect.episodes,
                phase="online",
                stop=self._stop,
            )
        except BaseException as error:  # reported by stop(); training goes on with what it has
            self.error = error
            log.warning("online collection failed: %s", error)
        finally:
            metrics.close()

    def stop(self, timeout: float | None = None) -> CollectSummary | None:
        """Ask the actors to finish the episodes in flight, wait, and return what was collected."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.summary


def online_actors(c: CollectConfig, on_gpu: bool) -> CollectConfig:
    """The online phase's actors: on a GPU the same environments in as few actors as possible."""
    if not on_gpu:
        return c
    envs = c.workers * envs_per_worker(c)
    workers = -(-envs // ENVS_PER_GPU_ACTOR)
    return replace(c, workers=workers, envs_per_worker=-(-envs // workers))
