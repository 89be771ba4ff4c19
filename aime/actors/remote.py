"""The one place that makes rollout workers Ray actors: resources, restarts, retries, concurrency."""

from __future__ import annotations

from typing import Any

from aime.actors.rollout import RolloutWorker
from aime.config import CollectConfig

# Batches the driver queues on one actor: one stepping while the other's episodes are written.
CALLS_IN_FLIGHT = 2


def actor_request(cfg: CollectConfig) -> dict[str, float]:
    """What one rollout actor asks Ray for (below), as ``ray.available_resources()`` names it."""
    return {"CPU": float(cfg.cpus_per_worker), **{key: float(value) for key, value in cfg.resources.items()}}


def rollout_actor(cfg: CollectConfig, name: str | None = None, **worker_kwargs: Any) -> Any:
    """A RolloutWorker actor. Ray restarts a crashed actor (``max_restarts``) and re-runs its
    interrupted call (``max_task_retries``); slots make the re-run idempotent. One thread per queued
    ``run_episodes`` call and one more, so ``set_policy_weights`` and ``steps_done`` answer while
    both are busy."""
    import ray

    actor_class = ray.remote(  # type: ignore[call-overload]
        num_cpus=cfg.cpus_per_worker,
        resources=dict(cfg.resources) or None,
        max_restarts=cfg.max_restarts,
        max_task_retries=cfg.max_task_retries,
        max_concurrency=CALLS_IN_FLIGHT + 1,
        scheduling_strategy="SPREAD",  # on a cluster, over the nodes (a lost node loses fewer actors)
    )(RolloutWorker)
    return actor_class.options(name=name).remote(**worker_kwargs)
