"""``aime eval``: open-loop prediction, the copy-last-frame baseline and the ELBO on held-out episodes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on held-out episodes",
        description="Evaluate a checkpoint on the held-out episodes of a replay store (a seeded split by\n"
        "episode id): per-step MSE/PSNR/SSIM of open-loop prediction from C context frames over H\n"
        "steps beside the copy-last-frame baseline, and the ELBO with its components.\n"
        "Writes eval.json and psnr_horizon.png.",
        epilog="examples: aime eval results/<run_id>\n"
        "          aime eval results/<run_id>/checkpoints/train/step00001000 --horizon 15",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint",
        help="a checkpoint directory (model.safetensors, config.yaml, meta.json), or a run directory "
        "(its best checkpoint by periodic eval, else its newest)",
    )
    parser.add_argument(
        "--episodes", metavar="DIR", help="replay store (default: the checkpoint's replay.root)"
    )
    parser.add_argument(
        "--context", type=int, metavar="C", help="context frames (default: train.seq_len / 4)"
    )
    parser.add_argument(
        "--horizon", type=int, metavar="H", help="predicted frames (default: train.seq_len - C)"
    )
    parser.add_argument(
        "--windows", type=int, default=64, metavar="N", help="evaluation windows (default: 64)"
    )
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="prior temperature; 0: the heaviest component's mean"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="the model's prediction is the mean of this many imagined futures (default: 1)",
    )
    parser.add_argument(
        "--eval-fraction",
        type=float,
        help="share of episodes held out (default: the run's train.eval_fraction)",
    )
    parser.add_argument("--split-seed", type=int, help="split seed (default: the run's seed)")
    parser.add_argument(
        "--all-episodes", action="store_true", help="use every episode: a store training never read"
    )
    parser.add_argument("--actors", type=int, help="evaluation actors (default: one per GPU, else 1)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where eval.json and the plot go: a folder or a URI such as s3://bucket/reports "
        "(default: the checkpoint's run directory)",
    )
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aime.storage.mirror import is_uri, private_staging

    if not is_uri(args.checkpoint) and not (args.out and is_uri(args.out)):
        return _evaluate(args)
    # A run on shared storage is read into a staging folder of this command's own: the node's shared
    # one may be the working copy of that run, still training here, whose unpushed files a pull
    # would overwrite. Only the report goes back, to the run directory or to --out.
    with private_staging():
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from aime import checkpoints
    from aime.eval import runner
    from aime.eval.report import EVAL_JSON, PSNR_PLOT, summary_lines
    from aime.run.ray_init import check_shared_locations, init_ray, live_nodes
    from aime.storage.mirror import is_uri, push, remote_of, shared_location, start_staging

    try:  # before Ray starts: a typo fails in a second
        checkpoint = checkpoints.resolve(args.checkpoint)
        cfg = checkpoints.checkpoint_config(checkpoint)
    except checkpoints.IncompleteCheckpointError as error:
        raise ValueError(str(error)) from None
    if args.windows < 1:
        raise ValueError(f"--windows must be >= 1, got {args.windows}")
    out = str(start_staging(args.out)) if args.out and is_uri(args.out) else args.out  # pushed at the end
    options = runner.EvalOptions(
        open_loop=runner.default_open_loop(cfg, args.context, args.horizon, args.temperature, args.samples),
        episodes=args.episodes,
        windows=args.windows,
        eval_fraction=args.eval_fraction,
        split_seed=args.split_seed,
        all_episodes=args.all_episodes,
        actors=args.actors,
        out=out,
        progress=not args.no_progress,
    )
    init_ray(cfg.ray, address=args.address)
    read_by_actors: dict[str, str | None] = {"checkpoint": shared_location(checkpoint)}
    read_by_actors["episodes"] = args.episodes or cfg.replay.root
    check_shared_locations(live_nodes(), read_by_actors, shared_paths=cfg.ray.shared_paths)
    report = runner.evaluate(checkpoint, options)
    for line in summary_lines(report):
        print(line)
    out = out or checkpoints.run_dir_of(checkpoint)
    shown = remote_of(out) or out  # on shared storage: the report goes there
    push(out, only=(EVAL_JSON, PSNR_PLOT))
    print(f"wrote {shown}/{EVAL_JSON} and {shown}/{PSNR_PLOT}")
    return 0
