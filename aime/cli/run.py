"""``aime run``: the end-to-end job: collect episodes, train the world model on them, summarise."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from aime.cli.common import add_config_arguments, config_from_args, resume_hint_on_interrupt
from aime.storage import atomic_write_json

if TYPE_CHECKING:
    from aime.config import Config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the whole pipeline on a local Ray (or a cluster)",
        description="Collect episodes into a fresh replay store, train the world model on them "
        "(train.steps=0 skips training), and summarise the run.",
        epilog="example: aime run --config quickstart",
    )
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aime.envs.tasks import check_env_config
    from aime.run.ray_init import check_shared_storage, init_ray, live_nodes
    from aime.run.rundir import create_run_dir
    from aime.storage.mirror import finish
    from aime.train.driver import check_train_config

    cfg = config_from_args(args)
    check_env_config(cfg.env.task, cfg.env.image_size, cfg.env.camera)  # before a run directory or Ray
    check_train_config(cfg)
    init_ray(cfg.ray, collects=True)
    check_shared_storage(cfg, live_nodes())  # before anything is written
    cfg, run_dir = create_run_dir(cfg)
    try:
        return _pipeline(cfg, run_dir, args)
    finally:
        finish(run_dir)  # a run directory on shared storage: pushed there, staging removed


def _pipeline(cfg: Config, run_dir: Path, args: argparse.Namespace) -> int:
    """Collect, train while collecting online, evaluate (and lenses), in ``run_dir``."""
    from aime.actors.collect import collect
    from aime.replay import ReplayStore, replay_stats
    from aime.run.rundir import MetricsWriter
    from aime.run.seeding import seed_everything
    from aime.storage.mirror import remote_of

    shown = remote_of(run_dir) or run_dir  # what the user opens: the shared copy when there is one
    seed_everything(cfg.seed)
    print(f"run directory {shown}")
    print(f"[1/3] collecting {cfg.collect.episodes} {cfg.env.task} episodes")
    metrics = MetricsWriter(run_dir / "collect_metrics.jsonl")
    try:
        collected = collect(cfg, metrics, progress=not args.no_progress)
    finally:
        metrics.close()
    stats = replay_stats(ReplayStore(collected.replay_root))
    print("\n".join(["collected:", *("  " + line for line in collected.lines())]))
    summary: dict = {"collect": asdict(collected), "replay": asdict(stats)}
    if cfg.train.steps > 0:
        summary |= _train_and_evaluate(cfg, run_dir, args, shown)
    atomic_write_json(run_dir / "summary.json", summary)
    print(f"results in {shown}  (replay: aime replay stats {collected.replay_root})")
    if summary.get("train", {}).get("checkpoint"):
        checkpoint = summary["train"]["checkpoint"]
        print("next:")
        print(f"  aime eval {checkpoint} --samples 8        # re-evaluate (mean of 8 imagined futures)")
        print(f"  aime train --resume {shown} train.steps=N   # train further")
        print(f"  tensorboard --logdir {shown}/tensorboard")
        print(f"  aime serve {shown}                      # serve its best checkpoint over HTTP")
    return 0


def _train_and_evaluate(cfg: Config, run_dir: Path, args: argparse.Namespace, shown: str | Path) -> dict:
    """Steps 2 and 3: train (collecting online beside it when configured), then evaluate the newest
    checkpoint and train the lenses on it; the summary's entries for them."""
    import ray

    from aime.actors.online import OnlineCollection
    from aime.metrics import TRAIN_TASK
    from aime.train.driver import check_cpu_budget, train

    summary: dict = {}
    print(f"[2/3] training {cfg.train.steps} steps on {cfg.train.num_workers} workers")
    online = None
    if cfg.collect.online_episodes:
        check_cpu_budget(cfg, ray.cluster_resources().get("CPU", 0), online_collection=True)
        online = OnlineCollection(cfg, run_dir / "online_collect_metrics.jsonl")
        online.start()
        print(f"      collecting up to {cfg.collect.online_episodes} more episodes while training (online)")
    try:
        with resume_hint_on_interrupt(shown):
            trained = train(cfg, run_dir, progress=not args.no_progress)
    finally:
        online_summary = online.stop() if online else None
    if online_summary is not None:
        summary["online_collect"] = asdict(online_summary)
        print(f"online: {online_summary.episodes} episodes collected during training")
    elif online is not None and online.error is not None:
        summary["online_collect"] = {"error": str(online.error)}
    summary["train"] = {
        "steps": trained.steps,
        "checkpoint": trained.checkpoint,
        "seconds_to_first_step": trained.seconds_to_first_step,
        "startup": trained.startup,
    }
    summary["train"] |= {k: v for k, v in trained.metrics.items() if k.startswith(TRAIN_TASK)}
    print(f"trained to step {trained.steps}; loss {trained.metrics.get('train/total', float('nan')):.4g}")
    print(f"checkpoint {trained.checkpoint}  (figures in {shown}/figures)")
    if trained.checkpoint:
        summary["eval"] = _evaluate(trained.checkpoint, progress=not args.no_progress)
        if cfg.lenses.enabled:
            summary["lenses"] = _lenses(cfg, run_dir)
    return summary


def _evaluate(checkpoint: str, progress: bool) -> dict:
    """Open-loop prediction on the held-out episodes, model against copy-last-frame."""
    from aime.eval.report import summary_lines
    from aime.eval.runner import EvalOptions, evaluate

    print("[3/3] evaluating on held-out episodes")
    report = evaluate(checkpoint, EvalOptions(progress=progress))
    print("\n".join(summary_lines(report)))
    return report.get("headline", {})


def _lenses(cfg: Config, run_dir: Path) -> dict:
    """Concept lenses on the best checkpoint's activations (lenses.enabled=true)."""
    from aime.lenses.stage import run_lens_stage

    print("[lenses] training concept lenses on the best checkpoint's activations")
    options = asdict(cfg.lenses)
    options.pop("enabled")
    result = run_lens_stage(run_dir, **options)
    graduated = ", ".join(result["graduated"]) or "none"
    print(f"lenses: {result['lenses']} trained, graduated: {graduated}; pack {result['pack']}")
    return result
