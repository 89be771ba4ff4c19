"""Rollout throughput, side by side in one run (prints JSON).

    python benchmarks/rollout.py [--task cheetah-run] [--image-size 64] [--steps 3000]
        [--workers N] [--episodes-per-worker K] [--envs-per-worker E]

(a) plain: one dm_control environment stepped in a plain loop with a reused lite mujoco.Renderer
    (no gymnasium wrapper, no concepts, no writing);
(b) aime actors, 1 worker, 1 environment: the whole collection path (env, concepts, recorder,
    Parquet); with E > 1 also (b_E): 1 worker stepping E environments in lockstep, their frames
    rendered as tiles with one read-back;
(c) aime actors, N workers (default one per core) of E environments each;
(d) floor: raw ``mujoco.mj_step`` substeps plus one render per frame, no Python environment.

A frame is one rendered observation (one agent step = ``action_repeat`` control steps). Actor rates
are steady-state: the slope of the actors' step counters after the first steps, so actor start-up
(process spawn, imports, model compile) is reported separately, not mixed into the rate.

Targets (issue 16, README): (b) >= 0.9x (a), on any machine; (c) scales to >= 0.85 of N x (b_E);
15 workers >= 20,000 frames/s steady on a GPU (checked only with N >= 15 on a host with an NVIDIA GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gpu_utilisation import gpu_names  # noqa: E402
from targets import check, only  # noqa: E402


def _lite_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    renderer = mujoco.Renderer(model, size, size)
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        renderer.scene.flags[flag] = 0
    return renderer


def plain_loop(task: str, size: int, steps: int, action_repeat: int) -> float:
    from dm_control import suite

    domain, name = task.split("-", 1)
    env = suite.load(domain, name, task_kwargs={"random": 0})
    renderer = _lite_renderer(env.physics.model.ptr, size)
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        action = rng.uniform(spec.minimum, spec.maximum)
        for _ in range(action_repeat):
            if env.step(action).last():
                env.reset()
        renderer.update_scene(env.physics.data.ptr, camera=0)
        renderer.render()
    rate = steps / (time.perf_counter() - start)
    renderer.close()
    return rate


def floor_loop(task: str, size: int, steps: int, action_repeat: int) -> float:
    from dm_control import suite

    domain, name = task.split("-", 1)
    env = suite.load(domain, name, task_kwargs={"random": 0})
    env.reset()
    model, data = env.physics.model.ptr, env.physics.data.ptr
    substeps = env._n_sub_steps * action_repeat
    renderer = _lite_renderer(model, size)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        data.ctrl[:] = rng.uniform(-1, 1, model.nu)
        for _ in range(substeps):
            mujoco.mj_step(model, data)
        renderer.update_scene(data, camera=0)
        renderer.render()
    rate = steps / (time.perf_counter() - start)
    renderer.close()
    return rate


def actor_rate(
    task: str, size: int, workers: int, envs: int, episodes: int, workdir: str
) -> dict[str, float]:
    from aime.actors.collect import collect
    from aime.config import Config, load_config
    from aime.run.rundir import MetricsWriter, create_run_dir

    cfg = load_config(
        Config,
        None,
        [
            f"env.task={task}",
            f"env.image_size={size}",
            f"collect.workers={workers}",
            f"collect.envs_per_worker={envs}",
            f"collect.episodes={episodes}",
            f"results_dir={workdir}",
            "log_every_seconds=0.25",
        ],
    )
    cfg, run_dir = create_run_dir(cfg)
    metrics = MetricsWriter(run_dir / "metrics.jsonl")
    summary = collect(cfg, metrics, progress=False)
    metrics.close()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    moving = [r for r in records if r["env/steps"] > 0]
    first, last = moving[0], moving[-1]
    steady = (last["env/steps"] - first["env/steps"]) / max(last["time"] - first["time"], 1e-9)
    return {
        "steady_frames_per_second": round(steady, 1),
        "end_to_end_frames_per_second": round(summary.steps_per_second, 1),
        "seconds": round(summary.seconds, 2),
        "first_frame_seconds": summary.first_frame_seconds,
        "episodes": summary.episodes,
        "bytes_per_frame": round(summary.bytes / summary.steps, 1),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="cheetah-run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-repeat", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3000, help="frames per plain and floor loop")
    parser.add_argument("--repeats", type=int, default=3, help="plain and floor loops, interleaved")
    parser.add_argument("--episodes-per-worker", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="(c): default one per core")
    parser.add_argument("--envs-per-worker", type=int, default=1, help="E: environments each actor steps")
    return parser.parse_args()


def plain_and_floor(args: argparse.Namespace) -> dict:
    """(a) the plain loop and (d) the floor, interleaved ``--repeats`` times; medians and every run
    (single short loops on the GPU machine varied 1.7x)."""
    plain, floor = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(args.task, args.image_size, args.steps, args.action_repeat))
        floor.append(floor_loop(args.task, args.image_size, args.steps, args.action_repeat))
    return {
        "a_plain_frames_per_second": round(float(np.median(plain)), 1),
        "d_floor_frames_per_second": round(float(np.median(floor)), 1),
        "a_plain_runs": [round(x, 1) for x in plain],
        "d_floor_runs": [round(x, 1) for x in floor],
    }


def main() -> None:
    args = parse_args()

    import ray

    from aime.config import RayConfig
    from aime.run.ray_init import init_ray

    size, task, repeat = args.image_size, args.task, args.action_repeat
    out: dict = {
        "task": task,
        "image_size": size,
        "action_repeat": repeat,
        "render": "lite",
        "cores": os.cpu_count(),
    }
    out |= plain_and_floor(args)
    init_ray(RayConfig(num_cpus=max(args.workers, 1)))
    e, n, k = args.envs_per_worker, args.workers, args.episodes_per_worker
    with tempfile.TemporaryDirectory() as workdir:
        one = actor_rate(task, size, 1, 1, k, workdir)
        one_e = actor_rate(task, size, 1, e, max(k, e), workdir) if e > 1 else one
        many = actor_rate(task, size, n, e, max(k, e) * n, workdir)
    ray.shutdown()
    a, d = out["a_plain_frames_per_second"], out["d_floor_frames_per_second"]
    b, b_e, c = (x["steady_frames_per_second"] for x in (one, one_e, many))
    out["b_actors_1_worker"] = one
    if e > 1:
        out[f"b_actors_1_worker_{e}_envs"] = one_e
    out[f"c_actors_{n}_workers_{e}_envs"] = many
    out["ratio_b_over_a"] = round(b / a, 3)
    out["ratio_b_e_over_a"] = round(b_e / a, 3)
    out["scaling_efficiency_c_over_n_b_e"] = round(c / (n * b_e), 3)
    out["fraction_of_floor"] = {
        "a": round(a / d, 3),
        "b": round(b / d, 3),
        "b_e": round(b_e / d, 3),
        "c_per_worker": round(c / n / d, 3),
        "c_per_env": round(c / (n * e) / d, 3),
    }
    gpus = gpu_names()
    on_gpu = only(bool(gpus) and n >= 15, f"a GPU target at 15 workers; this run: {n} on {gpus or 'CPU'}")
    scaling = out["scaling_efficiency_c_over_n_b_e"]
    out["targets"] = check(
        {
            "ratio_b_over_a": (out["ratio_b_over_a"], ">=", 0.9),
            "scaling_efficiency_c_over_n_b_e": (scaling, ">=", 0.85, only(n > 1, "one worker: no scaling")),
            "c_steady_frames_per_second": (c, ">=", 20_000, on_gpu),
        }
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
