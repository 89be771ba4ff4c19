"""Where a rollout actor's start-up goes (prints JSON): it bounds short collections end to end.

    python benchmarks/actor_startup.py [--workers 15] [--envs 10] [--runtime-env none job both]

In this process, one after another: importing ray, the actor's modules, dm_control's suite, building
the first environment, cloning one, making the EGL renderer. Then a fresh local Ray starts
``--workers`` RolloutWorker actors at once, as ``aime collect`` does, and each reports its own
start-up (process start to ``__init__``, ``__init__`` itself) beside the driver's creation-to-ready
time. Seconds throughout.

``--runtime-env`` says how the workers get their environment: ``none`` as ``aime.run.ray_init``
starts a local Ray (inherited from this process; Ray prestarts one worker per CPU), ``job`` as it did
before (the same variables as a job runtime_env, which Ray's prestarted workers do not serve), ``both``
one after the other in this call. The actors are created right after ``ray.init`` returns, as
``aime collect`` creates them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def in_process(envs: int) -> dict[str, float]:
    out, last = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        out[name] = round(now - last, 3)
        last = now

    import ray  # noqa: F401

    lap("import_ray")
    import aime.actors.rollout  # noqa: F401

    lap("import_actor_modules")
    from dm_control import suite  # noqa: F401

    lap("import_dm_control_suite")
    from aime.envs import make_env
    from aime.envs.lockstep import LockstepEnvs

    first = make_env("cheetah-run", seed=0, image_size=64)
    lap("first_env")
    clones = [first.clone(i) for i in range(1, envs)]
    lap(f"{envs - 1}_clones")
    lockstep = LockstepEnvs([first, *clones])
    lap("egl_renderer")
    lockstep.reset(range(envs), range(envs))
    lap("first_frames")
    lockstep.close()
    return out


def actors(workers: int, envs: int, runtime_env: str) -> dict:
    import ray

    from aime.actors.policy import make_policy
    from aime.actors.remote import rollout_actor
    from aime.config import Config, load_config
    from aime.envs import make_env_from_config
    from aime.run.rundir import create_run_dir

    cfg = load_config(Config, None, [f"results_dir={tempfile.mkdtemp()}", "env.image_size=64"])
    cfg = create_run_dir(cfg)[0]
    start = time.perf_counter()
    variables = {"MUJOCO_GL": os.environ["MUJOCO_GL"], "LP_NUM_THREADS": "1"}
    if runtime_env == "job":
        ray.init(num_cpus=workers, include_dashboard=False, runtime_env={"env_vars": variables})
    else:
        os.environ.update(variables)
        ray.init(num_cpus=workers, include_dashboard=False)
    init = time.perf_counter() - start
    kwargs = dict(
        make_env=functools.partial(make_env_from_config, cfg.env),
        make_policy=functools.partial(make_policy, "random"),
        replay=cfg.replay,
        run_id=cfg.run_id or "",
        seed=0,
        task=cfg.env.task,
        num_envs=envs,
    )
    start = time.perf_counter()
    handles = [rollout_actor(cfg.collect, worker_id=i, **kwargs) for i in range(workers)]
    pending = {h.ready.remote(): i for i, h in enumerate(handles)}
    reports = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        report = ray.get(done[0])
        report["creation_to_ready_seconds"] = round(time.perf_counter() - start, 3)
        reports.append(report)
        del pending[done[0]]
    ray.shutdown()
    keys = ("process_to_init_seconds", "init_seconds", "creation_to_ready_seconds")
    return {
        "runtime_env": runtime_env,
        "ray_init_seconds": round(init, 3),
        **{f"{k}_min_max": [min(r[k] for r in reports), max(r[k] for r in reports)] for k in keys},
        "gl": reports[0]["gl"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=15)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--runtime-env", choices=("none", "job", "both"), default="none")
    args = parser.parse_args()
    modes = ["job", "none"] if args.runtime_env == "both" else [args.runtime_env]
    out: dict = {"in_process": in_process(args.envs)}
    out["actors"] = [actors(args.workers, args.envs, mode) for mode in modes]
    out["workers"], out["envs"] = args.workers, args.envs
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
