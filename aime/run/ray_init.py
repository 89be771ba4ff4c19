"""Starting or joining Ray: a local instance by default, a cluster when an address is given."""

from __future__ import annotations

import logging
import os
from typing import Any

from aime.config import RayConfig

log = logging.getLogger(__name__)


def init_ray(cfg: RayConfig, address: str | None = None) -> Any:
    """Join ``address`` / ``cfg.address`` / ``$RAY_ADDRESS`` if any, else start a local Ray."""
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or cfg.address or os.environ.get("RAY_ADDRESS")
    # llvmpipe renders a 64x64 frame no faster with more threads (measured: 3.12 vs 3.18 ms/step
    # with 1 and 2), and many actors per node would oversubscribe the cores.
    env_vars = {
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        "LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS", "1"),
        # aime draws one progress bar per job (training steps, evaluated windows); Ray Data's bars,
        # one per dataset in every worker, interleave with it and bury the closing summary.
        # RAY_DATA_DISABLE_PROGRESS_BARS=0 brings them back.
        "RAY_DATA_DISABLE_PROGRESS_BARS": os.environ.get("RAY_DATA_DISABLE_PROGRESS_BARS", "1"),
    }
    if env_vars["RAY_DATA_DISABLE_PROGRESS_BARS"] != "0":  # this process's datasets (evaluation)
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
    runtime_env = {"env_vars": env_vars}
    if address:
        log.info("joining Ray at %s", address)
        return ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    kwargs: dict[str, Any] = {"include_dashboard": cfg.include_dashboard, "runtime_env": runtime_env}
    if cfg.num_cpus is not None:
        kwargs["num_cpus"] = cfg.num_cpus
    if cfg.object_store_memory_mb is not None:
        kwargs["object_store_memory"] = cfg.object_store_memory_mb * 2**20
    return ray.init(**kwargs)
