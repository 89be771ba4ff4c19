"""Where a rollout step's time goes, in-process (prints JSON).

    python benchmarks/rollout_profile.py [--envs 1] [--episodes 3] [--cprofile 25]

Runs a RolloutWorker in this process (cheetah-run, 64x64, lite, action repeat 2, random policy) and
times its parts by wrapping them with clocks: rendering, the environment step without rendering,
concepts, the policy, the recorder, writing Parquet. ``overhead_ms`` is everything but rendering;
the plain loop's own non-render time (dm_control's step, no aime) is measured beside it, so the
difference is what aime adds per frame. ``--cprofile N`` prints the top N functions by own time.
``--ray`` also starts a RolloutWorker actor: its GL renderer, CUDA devices, threads, start-up.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

TIMES: dict[str, float] = defaultdict(float)
PARTS = [  # (module, class, method, label); missing ones are skipped, so older code profiles too
    ("aime.envs.render", "PixelRenderer", "render_many", "render"),
    ("aime.envs.render", "PixelRenderer", "render", "render"),
    ("aime.envs.dmc", "DMCEnv", "step", "env_step_incl_render"),
    ("aime.envs.concepts", "ConceptSet", "__call__", "concepts"),
    ("aime.actors.policy", "RandomPolicy", "act", "policy"),
    ("aime.actors.recorder", "EpisodeRecorder", "step", "recorder"),
    ("aime.actors.rollout", "RolloutWorker", "_write", "write"),
]


def _wrap(module: str, cls: str, method: str, label: str) -> bool:
    import importlib

    owner = getattr(importlib.import_module(module), cls, None)
    original = getattr(owner, method, None)
    if original is None or method not in vars(owner):
        return False

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start

    setattr(owner, method, timed)
    return True


def profile_worker(envs: int, episodes: int, top: int) -> dict:
    from aime.actors.policy import make_policy
    from aime.actors.rollout import RolloutWorker
    from aime.config import Config, load_config
    from aime.envs import make_env_from_config
    from aime.run.rundir import create_run_dir

    cfg = load_config(Config, None, [f"results_dir={tempfile.mkdtemp()}", "env.image_size=64"])
    cfg = create_run_dir(cfg)[0]
    worker = RolloutWorker(
        0,
        make_env=functools.partial(make_env_from_config, cfg.env),
        make_policy=functools.partial(make_policy, "random"),
        replay=cfg.replay,
        run_id=cfg.run_id or "",
        seed=0,
        task=cfg.env.task,
        num_envs=envs,
    )
    worker.run_episodes(list(range(envs)))  # warm: first episode pays for compilation and caches
    wrapped: set[str] = set()
    for part in PARTS:
        if part[3] not in wrapped or part[3] != "render":  # render() calls render_many(): count once
            wrapped.add(part[3]) if _wrap(*part) else None
    TIMES.clear()
    profiler = cProfile.Profile() if top else None
    steps_before, start = worker.steps_done(), time.perf_counter()
    slots = list(range(100, 100 + episodes * envs))
    if profiler:
        worker._on_env_thread(lambda: profiler.runcall(worker._run_episodes, slots))
    else:
        worker.run_episodes(slots)
    seconds = time.perf_counter() - start
    frames = worker.steps_done() - steps_before
    worker.close()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)
    ms = {k: round(v / frames * 1e3, 4) for k, v in sorted(TIMES.items())}
    total = seconds / frames * 1e3
    return {
        "envs": envs,
        "frames": frames,
        "ms_per_frame": round(total, 4),
        "parts_ms_per_frame": ms,
        "overhead_ms_per_frame": round(total - ms.get("render", 0.0), 4),
    }


def plain_breakdown(steps: int) -> dict:
    import mujoco
    from dm_control import suite

    env = suite.load("cheetah", "run", task_kwargs={"random": 0})
    renderer = mujoco.Renderer(env.physics.model.ptr, 64, 64)
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        renderer.scene.flags[flag] = 0
    spec, rng, render = env.action_spec(), np.random.default_rng(0), 0.0
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        action = rng.uniform(spec.minimum, spec.maximum)
        for _ in range(2):
            if env.step(action).last():
                env.reset()
        t = time.perf_counter()
        renderer.update_scene(env.physics.data.ptr, camera=0)
        renderer.render()
        render += time.perf_counter() - t
    total = (time.perf_counter() - start) / steps * 1e3
    renderer.close()
    return {
        "ms_per_frame": round(total, 4),
        "render_ms": round(render / steps * 1e3, 4),
        "overhead_ms_per_frame": round(total - render / steps * 1e3, 4),
    }


def ray_actor_view(envs: int) -> dict:
    """A RolloutWorker actor of ``envs`` environments: what it renders on, what it sees, and how long
    it takes to start (creation to ready, and the worker's own start-up breakdown)."""
    import ray

    from aime.actors.policy import make_policy
    from aime.actors.remote import rollout_actor
    from aime.config import Config, load_config
    from aime.envs import make_env_from_config
    from aime.run.rundir import create_run_dir

    @ray.remote(num_cpus=1)
    def environment() -> dict:
        keys = ("CUDA_VISIBLE_DEVICES", "MUJOCO_EGL_DEVICE_ID", "OMP_NUM_THREADS")
        return {k: os.environ.get(k) for k in keys}

    cfg = load_config(Config, None, [f"results_dir={tempfile.mkdtemp()}", "env.image_size=64"])
    cfg = create_run_dir(cfg)[0]
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        out = ray.get(environment.remote())
        start = time.perf_counter()
        actor = rollout_actor(
            cfg.collect,
            worker_id=0,
            make_env=functools.partial(make_env_from_config, cfg.env),
            make_policy=functools.partial(make_policy, "random"),
            replay=cfg.replay,
            run_id=cfg.run_id or "",
            seed=0,
            task=cfg.env.task,
            num_envs=envs,
        )
        out |= ray.get(actor.ready.remote())
        out["envs"], out["creation_to_ready_seconds"] = envs, round(time.perf_counter() - start, 3)
        ray.kill(actor)
        return out
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, nargs="+", default=[1])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per environment")
    parser.add_argument("--cprofile", type=int, default=0, help="print the top N functions by own time")
    parser.add_argument("--ray", action="store_true")
    args = parser.parse_args()
    out: dict = {"plain": plain_breakdown(1500)}
    out["aime"] = [profile_worker(e, args.episodes, args.cprofile) for e in args.envs]
    if args.ray:
        out["ray_actor"] = ray_actor_view(max(args.envs))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
