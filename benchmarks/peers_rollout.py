"""Rollout throughput against RLlib and gymnasium, side by side in one run (prints JSON).

    MUJOCO_GL=egl RAY_USAGE_STATS_ENABLED=0 flock /tmp/aime-ray.lock \\
        python benchmarks/peers_rollout.py [--workers 1 2] [--episodes-per-worker 4] [--repeats 3]
    # GPU machine: --workers 1 2 15

Every runner steps the same environment class, aime's gymnasium env (``DMCEnv``, registered as
``aime/cheetah-run-v0``): cheetah-run, 64x64 pixels, lite rendering, action repeat 2, uniformly
random actions. A frame is one rendered observation (one agent step). At each worker count N:

aime: ``aime.actors.collect`` with N rollout actors of one env each, writing every episode to the
    replay store (Parquet, zstd pixels): ``benchmarks/rollout.py``'s ``actor_rate``;
rllib: an ``EnvRunnerGroup`` of N remote ``SingleAgentEnvRunner``s (no local one), each sampling
    one whole episode per round with ``random_actions=True``, the episodes returned to the driver
    (what an RLlib algorithm does with them), written nowhere;
rllib_npz: the same, but each env runner writes its episodes itself with ``np.savez_compressed``
    (Dreamer-style npz: pixels, state, actions, rewards) and returns only counts;
gym_async: a gymnasium ``AsyncVectorEnv`` of N envs in this process (one spawned subprocess per env),
    stepped ``--episodes-per-worker`` episodes' worth of steps, nothing written.

"steady" excludes start-up: aime's is the slope of the actors' step counters, rllib's the frames of
rounds 2.. over their time, gym_async's the steps after the first 50. "end_to_end" includes creating
the actors / env runners / subprocesses. ``per_worker_efficiency`` is steady(N) / (N x steady(1))
of the same runner and repeat. Runners are interleaved within each repeat; min/median/max over
repeats are reported, and ratios aime / peer of the medians. Target (issue 19): aime >= every peer at
equal workers, steady and end to end (each ratio >= 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("LP_NUM_THREADS", "1")  # as aime's actors get it (aime/run/ray_init.py)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rollout import actor_rate  # noqa: E402
from targets import check  # noqa: E402

EPISODE_FRAMES = 500  # cheetah-run: 1000 control steps at action repeat 2
VECTOR_WARMUP_STEPS = 50
Row = dict[str, Any]


def env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"image_size": args.image_size, "action_repeat": args.action_repeat, "render_lite": True}


def gym_id(task: str) -> str:
    """The registered id with its module, so any process (Ray worker, subprocess) registers it first."""
    from aime.envs.registration import env_id

    return f"aime.envs:{env_id(task)}"


# ---- aime ------------------------------------------------------------------------------------
def run_aime(args: argparse.Namespace, workers: int, workdir: str) -> Row:
    out = actor_rate(args.task, args.image_size, workers, 1, args.episodes_per_worker * workers, workdir)
    return {
        "steady": out["steady_frames_per_second"],
        "end_to_end": out["end_to_end_frames_per_second"],
        "frames": out["episodes"] * EPISODE_FRAMES,
        "bytes_per_frame": out["bytes_per_frame"],
    }


# ---- RLlib -----------------------------------------------------------------------------------
def sample_one(runner: Any) -> list[Any]:
    """Runs inside an env runner: one whole episode of random actions, returned to the driver."""
    return runner.sample(num_episodes=1, random_actions=True)


def sample_and_write(runner: Any, directory: str) -> tuple[int, int]:
    """Runs inside an env runner: one episode, written there as compressed npz; (frames, bytes)."""
    frames = written = 0
    for episode in runner.sample(num_episodes=1, random_actions=True):
        observations = episode.get_observations()
        path = os.path.join(directory, f"{episode.id_}.npz")
        np.savez_compressed(
            path,
            pixels=observations["pixels"],
            state=observations["state"],
            actions=episode.get_actions(),
            rewards=episode.get_rewards(),
            terminated=episode.is_terminated,
        )
        frames += len(episode)
        written += os.path.getsize(path)
    return frames, written


def run_rllib(args: argparse.Namespace, workers: int, write_to: str | None) -> Row:
    import functools

    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    config = (
        AlgorithmConfig()
        .environment(gym_id(args.task), env_config=env_kwargs(args))
        .env_runners(num_env_runners=workers, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
    )
    begin = time.perf_counter()
    group = EnvRunnerGroup(config=config, local_env_runner=False)
    call: Callable[[Any], Any] = sample_one
    if write_to is not None:
        call = functools.partial(sample_and_write, directory=write_to)
    rounds, frames, written = [], 0, 0
    try:
        for _ in range(args.episodes_per_worker):
            results = group.foreach_env_runner(call, local_env_runner=False)
            now = time.perf_counter()
            for result in results:
                if write_to is None:
                    frames += sum(len(e) for e in result)
                else:
                    frames, written = frames + result[0], written + result[1]
            rounds.append((now, frames))
        end = rounds[-1][0]
    finally:
        group.stop()
    # Frames of rounds 2.. over their time: the first round pays for the first reset and render.
    first_end, first_frames = rounds[0]
    row: Row = {
        "steady": round((frames - first_frames) / (end - first_end), 1),
        "end_to_end": round(frames / (end - begin), 1),
        "frames": frames,
    }
    if write_to is not None:
        row["bytes_per_frame"] = round(written / frames, 1)
    return row


# ---- gymnasium AsyncVectorEnv ----------------------------------------------------------------
def _make_gym_env(task: str, seed: int, kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    import aime.envs  # noqa: F401  (a spawned subprocess registers aime's ids here)

    return gym.make(gym_id(task), seed=seed, **kwargs)


def run_gym_async(args: argparse.Namespace, workers: int) -> Row:
    import gymnasium as gym

    import aime.envs  # noqa: F401  (registers the ids in this process and, spawned, in each subprocess)

    steps = args.episodes_per_worker * EPISODE_FRAMES
    make = [partial(_make_gym_env, args.task, seed, env_kwargs(args)) for seed in range(workers)]
    begin = time.perf_counter()
    # Spawned, not forked: the vector env makes one env in this process first (for its spaces), and a
    # forked child cannot use the EGL context it leaves behind on an NVIDIA driver (the H200 run's
    # children failed at reset; Mesa on the CPU happens to survive the fork).
    envs = gym.vector.AsyncVectorEnv(make, context="spawn")
    try:
        envs.reset(seed=0)
        for step in range(steps):
            if step == VECTOR_WARMUP_STEPS:
                warm = time.perf_counter()
            envs.step(envs.action_space.sample())
        end = time.perf_counter()
    finally:
        envs.close()
    return {
        "steady": round(workers * (steps - VECTOR_WARMUP_STEPS) / (end - warm), 1),
        "end_to_end": round(workers * steps / (end - begin), 1),
        "frames": workers * steps,
    }


# ---- the run ---------------------------------------------------------------------------------
def spread(values: list[float], digits: int = 1) -> dict[str, Any]:
    return {
        "min": round(min(values), digits),
        "median": round(float(np.median(values)), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def summarise(raw: dict[str, dict[int, list[Row]]], workers: list[int]) -> dict[str, Any]:
    """min/median/max per runner and N, per-worker efficiency against the same runner's N=1."""
    out: dict[str, Any] = {}
    for runner, by_n in raw.items():
        out[runner] = {}
        for n in workers:
            rows = by_n[n]
            entry = {key: spread([r[key] for r in rows]) for key in ("steady", "end_to_end")}
            if 1 in by_n and n != 1:
                # Repeat i at N workers against repeat i at 1 worker of the same runner.
                efficiency = [r["steady"] / (n * one["steady"]) for r, one in zip(rows, by_n[1], strict=True)]
                entry["per_worker_efficiency"] = spread(efficiency, 3)
            if "bytes_per_frame" in rows[0]:
                entry["bytes_per_frame"] = rows[0]["bytes_per_frame"]
            entry["frames_per_run"] = rows[0]["frames"]
            out[runner][f"workers_{n}"] = entry
    return out


def ratios(summary: dict[str, Any], workers: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for peer in summary:
        if peer == "aime":
            continue
        for n in workers:
            for key in ("steady", "end_to_end"):
                a = summary["aime"][f"workers_{n}"][key]["median"]
                p = summary[peer][f"workers_{n}"][key]["median"]
                out[f"aime_over_{peer}_workers_{n}_{key}"] = round(a / p, 3)
    return out


def versions() -> dict[str, str]:
    import gymnasium
    import mujoco
    import ray

    return {"ray": ray.__version__, "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="cheetah-run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="N: worker counts")
    parser.add_argument("--episodes-per-worker", type=int, default=4, help="episodes per worker and run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--runners", nargs="+", default=["aime", "rllib", "rllib_npz", "gym_async"], help="which rows"
    )
    args = parser.parse_args()
    if args.action_repeat != 2 or args.task != "cheetah-run":
        # aime's actors take the preset's action repeat; EPISODE_FRAMES assumes cheetah-run at 2.
        parser.error("this benchmark is defined for cheetah-run at action repeat 2")
    if args.episodes_per_worker < 2:
        parser.error("--episodes-per-worker must be >= 2: steady rates skip the first episode")
    return args


def main() -> None:
    args = parse_args()
    import ray

    from aime.config import RayConfig
    from aime.run.ray_init import init_ray

    workers = sorted(set(args.workers))
    init_ray(RayConfig(num_cpus=max(workers)))
    raw: dict[str, dict[int, list[Row]]] = {r: {n: [] for n in workers} for r in args.runners}
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="aime-peers-rollout-") as workdir:
            for _ in range(args.repeats):
                for n in workers:
                    for runner in args.runners:
                        if runner == "aime":
                            row = run_aime(args, n, workdir)
                        elif runner == "rllib":
                            row = run_rllib(args, n, None)
                        elif runner == "rllib_npz":
                            directory = tempfile.mkdtemp(dir=workdir)
                            row = run_rllib(args, n, directory)
                        elif runner == "gym_async":
                            row = run_gym_async(args, n)
                        else:
                            raise SystemExit(f"unknown runner {runner!r}")
                        raw[runner][n].append(row)
                        print(f"[peers_rollout] {runner} N={n}: {row}", file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
    summary = summarise(raw, workers)
    out: dict[str, Any] = {
        "config": {
            "task": args.task,
            "image_size": args.image_size,
            "action_repeat": args.action_repeat,
            "render": "lite",
            "env_id": gym_id(args.task),
            "workers": workers,
            "episodes_per_worker": args.episodes_per_worker,
            "repeats": args.repeats,
            "cores": os.cpu_count(),
            "rllib_npz_writer": "np.savez_compressed in each env runner",
        },
        "versions": versions(),
        "frames_per_second": summary,
    }
    if "aime" in summary:
        out["ratios"] = ratios(summary, workers)
        out["targets"] = check({name: (ratio, ">=", 1.0) for name, ratio in out["ratios"].items()})
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
