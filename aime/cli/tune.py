"""``aime tune``: a Ray Tune sweep over world-model training, or the resumption of one."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="sweep hyperparameters or pillars with Ray Tune",
        description="Run a sweep: each trial is a real `aime train` run (its own Ray Train workers,\n"
        "checkpoints and run directory) reporting its periodic held-out evaluation to Tune, whose\n"
        "scheduler (ASHA by default) stops weak trials early. Writes results.csv, metric.png,\n"
        "best.yaml and best.json into the experiment directory.",
        epilog="examples: aime tune --config lr samples=8\n"
        "          aime tune --config cluster/configs/sweep/ablation.yaml\n"
        "          aime tune --resume results/sweeps/lr-20261201-120000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", metavar="SWEEP", help="sweep YAML (a path, or a name in cluster/configs/sweep/)"
    )
    source.add_argument("--resume", metavar="EXPERIMENT_DIR", help="continue an interrupted sweep")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--no-progress", action="store_true", help="no per-trial lines")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="sweep overrides, e.g. samples=8")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from aime.run.ray_init import check_shared_storage, init_ray, live_nodes
    from aime.tune.check import check_sweep
    from aime.tune.config import load_sweep
    from aime.tune.driver import resumed_sweep, run_sweep

    if args.resume:
        if args.overrides:
            raise ValueError("--resume continues the sweep as it was defined; it takes no overrides")
        sweep, directory = resumed_sweep(args.resume), args.resume
    else:
        sweep, directory = load_sweep(args.config, args.overrides), None
    base = check_sweep(sweep)  # space, metric and schedule errors before Ray starts
    init_ray(base.ray, address=args.address)
    # trials, episodes and Tune's state live under the sweep's results_dir
    check_shared_storage(replace(base, results_dir=sweep.results_dir), live_nodes())
    report = run_sweep(sweep, directory, resume=bool(args.resume), progress=not args.no_progress)
    print("\n".join(report.lines()))
    if report.best_config is None:
        where = f"{report.experiment_dir}/trials"
        print(f"aime tune: no trial reported {sweep.metric}; see the trials' run directories in {where}")
        return 1
    return 0
