"""``aime run``: the end-to-end job. Today: collect, then replay statistics."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from aime.cli.common import add_config_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the whole pipeline on a local Ray (or a cluster)",
        description="Collect episodes into a fresh replay store and report its statistics.",
        epilog="example: aime run --config quickstart",
    )
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aime.actors.collect import collect
    from aime.replay import ReplayStore, replay_stats
    from aime.run.ray_init import init_ray
    from aime.run.rundir import MetricsWriter, create_run_dir
    from aime.run.seeding import seed_everything

    cfg = config_from_args(args)
    cfg, run_dir = create_run_dir(cfg)
    seed_everything(cfg.seed)
    init_ray(cfg.ray)
    print(f"run directory {run_dir}")
    metrics = MetricsWriter(run_dir / "metrics.jsonl")
    try:
        summary = collect(cfg, metrics, progress=not args.no_progress)
    finally:
        metrics.close()
    stats = replay_stats(ReplayStore(summary.replay_root))
    (run_dir / "summary.json").write_text(
        json.dumps({"collect": asdict(summary), "replay": asdict(stats)}, indent=2)
    )
    print("\n".join(["collected:", *("  " + line for line in summary.lines())]))
    print("\n".join(["replay:", *("  " + line for line in stats.lines())]))
    print(f"results in {run_dir}  (inspect again: aime replay stats {summary.replay_root})")
    return 0
