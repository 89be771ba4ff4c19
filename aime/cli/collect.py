"""``aime collect``: fill a replay store with episodes from parallel rollout actors."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from aime.cli.common import add_config_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="collect episodes into a replay store",
        description="Run dm_control episodes in Ray actors and write them as Parquet to the replay store.",
        epilog="example: aime collect --task cheetah-run --episodes 20 --workers 2 --out results/replay\n"
        "on a GPU node: aime collect --episodes 480 --workers 15 (16 environments per actor there by\n"
        "default, their frames rendered as tiles with one GPU read-back per lockstep step; a frame is\n"
        "one rendered observation)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", help="dm_control task, domain-task (env.task)")
    parser.add_argument("--episodes", type=int, help="episodes to collect (collect.episodes)")
    parser.add_argument("--workers", type=int, help="rollout actors (collect.workers)")
    parser.add_argument(
        "--envs-per-worker",
        type=int,
        help="environments each actor steps in lockstep (collect.envs_per_worker; default auto: 16 where "
        "EGL renders on an NVIDIA GPU, else 1)",
    )
    parser.add_argument("--out", help="replay root: a directory or a pyarrow URI (replay.root)")
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def flag_overrides(args: argparse.Namespace) -> list[str]:
    pairs = {"env.task": args.task, "collect.episodes": args.episodes, "collect.workers": args.workers}
    pairs["collect.envs_per_worker"] = args.envs_per_worker
    pairs["replay.root"] = args.out
    return [f"{key}={value}" for key, value in pairs.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    from aime.actors.collect import collect
    from aime.envs.tasks import check_env_config
    from aime.run.ray_init import check_shared_storage, init_ray, live_nodes
    from aime.run.rundir import MetricsWriter, create_run_dir
    from aime.run.seeding import seed_everything
    from aime.storage import atomic_write_json
    from aime.storage.mirror import finish, remote_of

    cfg = config_from_args(args, flag_overrides(args))
    check_env_config(cfg.env.task, cfg.env.image_size, cfg.env.camera)  # before a run directory or Ray
    init_ray(cfg.ray, collects=True)
    check_shared_storage(cfg, live_nodes())  # before anything is written
    cfg, run_dir = create_run_dir(cfg)
    seed_everything(cfg.seed, torch_rng=False)  # this process never draws from torch
    print(f"run directory {remote_of(run_dir) or run_dir}")
    metrics = MetricsWriter(run_dir / "metrics.jsonl")
    try:
        summary = collect(cfg, metrics, progress=not args.no_progress)
        atomic_write_json(run_dir / "collect.json", asdict(summary))
    finally:
        metrics.close()
        finish(run_dir)  # a run directory on shared storage: pushed there, staging removed
    print("\n".join(["collected:", *("  " + line for line in summary.lines())]))
    return 0
