"""The one place that makes rollout workers Ray actors: resources, restarts, retries, concurrency."""

from __future__ import annotations

from typing import Any

from aime.actors.rollout import RolloutWorker
from aime.config import CollectConfig


def rollout_actor(cfg: CollectConfig, name: str | None = None, **worker_kwargs: Any) -> Any:
    """A RolloutWorker actor. Ray restarts a crashed actor (``max_restarts``) and re-runs its
    interrupted call (``max_task_retries``); slots make the re-run idempotent. ``max_concurrency=2``
    lets ``set_policy_weights`` and ``steps_done`` run while ``run_episodes`` is busy."""
    import ray

    actor_class = ray.remote(  # type: ignore[call-overload]
        num_cpus=cfg.cpus_per_worker,
        max_restarts=cfg.max_restarts,
        max_task_retries=cfg.max_task_retries,
        max_concurrency=2,
    )(RolloutWorker)
    return actor_class.options(name=name).remote(**worker_kwargs)
