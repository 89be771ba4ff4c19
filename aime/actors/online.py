"""Online collection: rollout actors keep writing episodes while the trainers sample the store.

    aime run:  collect(episodes)  ->  OnlineCollection.start()  ->  train(...)  ->  OnlineCollection.stop()
                                       collect(online_episodes, first_episode=episodes, phase="online")
                                       in a driver thread; samplers see new files within
                                       replay.refresh_seconds

The episodes continue the run's numbering (seeds and file names never collide with the first phase),
are split into training / held-out by episode id like every other, and the collection stops early,
after the episodes in flight, when training ends first.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from aime.actors.collect import CollectSummary, collect
from aime.config import Config
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
        try:
            self.summary = collect(
                self.cfg,
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
