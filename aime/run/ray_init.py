"""Starting or joining Ray: a local instance by default, a cluster when an address is given."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from aime import console
from aime.config import Config, RayConfig
from aime.storage.mirror import is_uri

log = logging.getLogger(__name__)

# What a rollout actor imports before its first frame (aime's actor modules, dm_control's suite):
# about 1.2 s of a 2.5 s start on an H200 host (README, "Rollout on a GPU").
ROLLOUT_MODULES = ("aime.actors.rollout", "dm_control.suite")

HEALTH_CHECK_INTERVAL = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"  # read by Ray Train's controller
DASHBOARD_PORT = 8265  # Ray's own default, where a local Ray's dashboard goes if it is free


def worker_environment() -> dict[str, str]:
    """The environment every Ray worker of aime's gets (a variable the user set first wins)."""
    return {
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        # llvmpipe renders a 64x64 frame no faster with more threads (measured: 3.12 vs 3.18 ms/step
        # with 1 and 2), and many actors per node would oversubscribe the cores.
        "LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS", "1"),
        # aime draws one progress bar per job (training steps, evaluated windows); Ray Data's bars,
        # one per dataset in every worker, interleave with it and bury the closing summary.
        # RAY_DATA_DISABLE_PROGRESS_BARS=0 brings them back.
        "RAY_DATA_DISABLE_PROGRESS_BARS": os.environ.get("RAY_DATA_DISABLE_PROGRESS_BARS", "1"),
        # Ray Train's controller hears of reports, failures and the end of training when it polls
        # its workers, every 2 s by default: metrics.jsonl, the progress bar and the first step's
        # time lagged by up to that, and each run ended 2-4 s after its last step (a 2-step run
        # on 2 cores: 21-26 s with 2 s, 17-19 s with 0.2 s). A poll is one small actor call a worker.
        HEALTH_CHECK_INTERVAL: os.environ.get(HEALTH_CHECK_INTERVAL, "0.25"),
    }


def init_ray(cfg: RayConfig, address: str | None = None, *, collects: bool = False) -> Any:
    """Join ``address`` / ``cfg.address`` / ``$RAY_ADDRESS`` if any, else start a local Ray.

    The worker environment (``worker_environment``: EGL rendering, one llvmpipe thread, Ray Data's
    bars off, Ray Train's controller polling every 0.25 s) goes to a cluster as the job's runtime_env
    and to a local Ray through this process's ``os.environ``, which it keeps set (a variable the user
    set first wins). For a command that ``collects``, a local Ray's prestarted workers import
    ``ROLLOUT_MODULES`` (unless ``cfg.preload_rollout_modules`` is off) while this process is still
    setting up, so the actors placed in them start without those imports; a cluster's workers were
    started by ``ray start`` and import nothing in advance."""
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or cfg.address or os.environ.get("RAY_ADDRESS")
    env_vars = worker_environment()
    import ray.data

    # This process's datasets (evaluation) follow the same setting.
    shown = env_vars["RAY_DATA_DISABLE_PROGRESS_BARS"] == "0"
    ray.data.DataContext.get_current().enable_progress_bars = shown
    console.quiet_known_noise()  # Ray's and Ray Data's log handlers exist now
    kwargs: dict[str, Any] = {}
    if address:
        log.info("joining Ray at %s", address)
        kwargs |= {"address": address, "log_to_driver": True, "runtime_env": {"env_vars": env_vars}}
    else:
        # A local Ray's raylet and workers inherit this process's environment, so the variables go
        # there rather than into a job runtime_env: Ray prestarts one worker per CPU at start-up only
        # for jobs without a runtime environment, and an actor placed in such a warm worker skips the
        # interpreter start and `import ray` (on 2 cores: actors ready 2.0-2.1 s after creation instead
        # of 3.7-3.9, `aime collect`'s first frames at 2.5 s instead of 4.0-5.5; README, "Rollout").
        os.environ.update(env_vars)
        # "local": a new instance, never one that `ray start` (or a dead cluster's leftover address
        # file) advertises on this machine: joining a cluster is what an address is for.
        kwargs["address"] = "local"
        kwargs["include_dashboard"] = cfg.include_dashboard
        if cfg.include_dashboard:
            kwargs |= own_state_api()
        if cfg.num_cpus is not None:
            kwargs["num_cpus"] = cfg.num_cpus
        if cfg.object_store_memory_mb is not None:
            kwargs["object_store_memory"] = cfg.object_store_memory_mb * 2**20
        if collects and cfg.preload_rollout_modules:  # Ray's worker imports these before any work
            kwargs["_system_config"] = {"preload_python_modules": list(ROLLOUT_MODULES)}
    context = ray.init(**kwargs)
    console.drop_forwarded_noise()
    return context


def own_state_api() -> dict[str, Any]:
    """``ray.init`` arguments that put a new local Ray's dashboard on 127.0.0.1 (Ray's port 8265 where
    it is free, else one the system picks), and ``RAY_API_SERVER_ADDRESS`` (set here, inherited by
    its processes) pointing there.

    Ray's state API finds a Ray that nobody named by looking at this machine: the cluster that
    ``ray start`` last recorded, else the one GCS process running. Ray Train's controller and its
    placement-group cleaner query it from inside their workers. With a ``ray start`` cluster on the
    same machine the cleaner asked that cluster about this run's controller, was told it did not
    exist, judged it dead and quit (by its code it removes the run's placement group, and the training
    workers in it, if one is registered by then); with a second local Ray it died of "Found multiple
    active Ray instances". Naming the address makes both ask this Ray. A variable the user set is
    replaced: it would name another Ray."""
    port = _free_port(DASHBOARD_PORT) or _free_port(0)  # free now; Ray binds it a moment later
    os.environ["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{port}"
    return {"dashboard_host": "127.0.0.1", "dashboard_port": port}


def _free_port(port: int) -> int | None:
    """``port`` (0: any) if 127.0.0.1 has it free, as the port number; None if it is taken."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(probe.getsockname()[1])


def live_nodes() -> int:
    """How many nodes the Ray this process joined has alive."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


SHARED_PATHS_ENV = "AIME_SHARED_PATHS"  # =1: local paths are a folder every node mounts (no config)


def check_shared_storage(cfg: Config, nodes: int) -> None:
    """On a cluster of several nodes, a local ``results_dir`` or ``replay.root`` would be a different
    folder on every node (actors write episodes where the trainers never look): refuse it up front."""
    paths = {"results_dir": cfg.results_dir, "replay.root": cfg.replay.root or cfg.results_dir}
    check_shared_locations(nodes, paths, shared_paths=cfg.ray.shared_paths)


def check_shared_locations(
    nodes: int, locations: Mapping[str, str | None], *, shared_paths: bool = False
) -> None:
    """``check_shared_storage`` for any named locations (a command's ``--out``, a checkpoint): on
    several nodes each must be a URI, unless ``shared_paths`` (``ray.shared_paths=true``) or
    ``AIME_SHARED_PATHS=1`` says the local paths are a folder every node mounts."""
    if nodes < 2 or shared_paths or os.environ.get(SHARED_PATHS_ENV) == "1":
        return
    local = [f"{key}={value}" for key, value in locations.items() if value and not is_uri(value)]
    if local:
        raise ValueError(
            f"the Ray cluster has {nodes} nodes but {' and '.join(local)} "
            f"{'are local paths' if len(local) > 1 else 'is a local path'}: each node "
            "would read and write its own disk. Use shared storage: results_dir=s3://<bucket>/runs "
            "(the replay store and checkpoints follow; gs:// and other pyarrow URIs work too) and "
            "URIs for a command's paths, or a folder every node mounts, then say so with "
            f"ray.shared_paths=true ({SHARED_PATHS_ENV}=1 for commands without a config)"
        )
