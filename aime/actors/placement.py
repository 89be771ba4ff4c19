"""Rollout actors that Ray has not placed: named on the console instead of a silent wait.

Ray queues an actor whose resources are all held (a leftover Ray Train run's placement group, another
job's actors) without a word to the driver, and the collection then waits for it for ever. The watch
asks each actor's built-in ``__ray_ready__`` (it answers as soon as the actor is constructed, ahead of
any queued call) and, for one still unplaced after ``warn_after`` seconds, logs once what it asks for
and what the cluster has free.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class PlacementWatch:
    """Tracks the actors' ``__ray_ready__`` calls; ``check()`` warns about the ones still waiting."""

    request: dict[str, float]  # what one actor asks Ray for, e.g. {"CPU": 1.0}
    warn_after: float  # seconds; <= 0 turns the warning off
    pending: dict[Any, tuple[str, float]] = field(default_factory=dict)  # ready ref -> (name, since)
    warned: list[str] = field(default_factory=list)

    def watch(self, actor: Any, name: str) -> None:
        """Start waiting for ``actor`` (a new or replacement one) to be placed and constructed."""
        self.pending[actor.__ray_ready__.remote()] = (name, time.monotonic())

    def check(self) -> list[str]:
        """Drop the actors that have started; warn once about each one waiting past ``warn_after``.
        Returns the names warned about now."""
        import ray

        if not self.pending:
            return []
        ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        for ref in ready:
            del self.pending[ref]  # started, or failed (the collection's own error path handles that)
        now = time.monotonic()
        late = [
            name
            for name, since in self.pending.values()
            if self.warn_after > 0 and now - since >= self.warn_after and name not in self.warned
        ]
        if late:
            self.warned += late
            waited = now - min(since for name, since in self.pending.values() if name in late)
            log.warning(unplaced_message(late, self.request, waited))
        return late


def unplaced_message(names: list[str], request: dict[str, float], waited: float) -> str:
    """What the user reads: which actors wait, what each needs, what the cluster has free of its total."""
    import ray

    free, total = ray.available_resources(), ray.cluster_resources()
    have = ", ".join(f"{key} {free.get(key, 0.0):g} free of {total.get(key, 0.0):g}" for key in request)
    needs = ", ".join(f"{key} {value:g}" for key, value in request.items())
    infeasible = any(total.get(key, 0.0) < value for key, value in request.items())
    why = (
        "no node has that much: lower collect.cpus_per_worker or fix collect.resources"
        if infeasible
        else "something else holds them (another run's actors, a leftover Ray Train job's placement group): "
        "free them, or lower collect.workers / collect.cpus_per_worker; on an autoscaling cluster a new "
        "node may still be starting"
    )
    return (
        f"collect: {len(names)} rollout actor(s) not started after {waited:.0f} s, waiting for resources "
        f"({', '.join(names)}): each needs {needs}; the cluster has {have}; {why}"
    )
