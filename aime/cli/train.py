"""``aime train``: world-model training with Ray Train + DeepSpeed on the replay store."""

from __future__ import annotations

import argparse
from pathlib import Path

from aime.cli.common import add_config_arguments, config_from_args, resume_hint_on_interrupt


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the world model on a replay store",
        description="Train the world model with Ray Train + DeepSpeed on the episodes of replay.root.",
        epilog="examples: aime train --config tiny replay.root=DIR\n"
        "          aime train --resume results/<run_id> train.steps=2000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its newest complete checkpoint"
    )
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aime.run.ray_init import check_shared_storage, init_ray, live_nodes
    from aime.run.rundir import create_run_dir
    from aime.run.seeding import seed_everything
    from aime.storage.mirror import drop, finish, remote_of
    from aime.train.driver import check_replay, check_train_config, train

    staged, resume_from = _resume_point(args)
    try:  # before a run directory or Ray exists: a bad input leaves nothing behind
        cfg = config_from_args(args)
        check_train_config(cfg)
        check_replay(cfg)
        if resume_from is not None:
            _check_steps_left(args.resume, resume_from, cfg.train.steps)
    except Exception:
        if staged is not None:
            drop(staged)  # only read so far: nothing to push back
        raise
    init_ray(cfg.ray)
    check_shared_storage(cfg, live_nodes())  # before anything is written
    cfg, run_dir = create_run_dir(cfg)
    seed_everything(cfg.seed)
    print(f"run directory {run_dir}" + (f" (resuming from {resume_from})" if resume_from else ""))
    try:
        with resume_hint_on_interrupt(remote_of(run_dir) or run_dir):
            summary = train(cfg, run_dir, resume_from=resume_from, progress=not args.no_progress)
    finally:
        finish(run_dir)  # a run on shared storage: pushed there, staging removed
    print(f"trained to step {summary.steps}; loss {summary.metrics.get('train/total', float('nan')):.4f}")
    print(f"checkpoint {summary.checkpoint}")
    return 0


def _resume_point(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    """For ``--resume RUN_DIR``: the run's folder (its staging copy for a URI) and the checkpoint it
    continues from, with ``args.config`` pointed at the run's own config.yaml; else (None, None)."""
    from aime.storage.mirror import drop, is_uri, pull
    from aime.train.checkpoint import resume_location

    if not args.resume:
        return None, None
    if args.config:
        raise ValueError("--resume takes the run's own config.yaml; give overrides, not --config")
    remote = args.resume.rstrip("/") if is_uri(args.resume) else None
    run_dir = pull(remote) if remote else Path(args.resume)  # shared storage: its staged copy
    resume_from = resume_location(run_dir)  # on shared storage: the checkpoint's URI
    if resume_from is None:
        drop(run_dir)
        raise ValueError(
            f"{run_dir} has no complete checkpoint registered by Ray Train to resume from "
            "(checkpoints/*/checkpoint_manager_snapshot.json lists them)"
        )
    args.config = str(run_dir / "config.yaml")
    return run_dir, str(resume_from)


def _check_steps_left(run: str, checkpoint: str, steps: int) -> None:
    """A run already trained to ``train.steps`` is refused, naming the override that trains it on
    (resuming it as it is would start Ray Train's whole worker group for no step)."""
    from aime.checkpoints import checkpoint_step

    done = checkpoint_step(checkpoint)
    if done >= steps:
        raise ValueError(
            f"{run} is already trained to step {done} (train.steps={steps}): nothing to resume; train "
            f"it on with a larger train.steps, e.g. aime train --resume {run} train.steps={done + steps}"
        )
