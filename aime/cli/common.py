"""Pieces every command shares: config arguments, logging, and turning known errors into messages."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from aime.config import Config, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="EXPERIMENT",
        help="experiment YAML (a path, or a name in cluster/configs/experiment/)",
    )
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key.sub=value",
        help="config overrides, e.g. env.image_size=96 seed=3",
    )


def config_from_args(args: argparse.Namespace, flag_overrides: Sequence[str] = ()) -> Config:
    overrides = list(flag_overrides) + list(args.overrides)
    if args.address:
        overrides.append(f"ray.address={args.address}")
    return load_config(Config, args.config, overrides)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("absl", "ray", "ray.data", "filelock", "OpenGL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from aime import console

    if verbose:
        console.show_everything()
    console.quiet_known_noise()


@contextlib.contextmanager
def resume_hint_on_interrupt(shown: str | Path) -> Iterator[None]:
    """Ctrl-C while a run trains: say how to continue it (its checkpoints stay), then let it stop."""
    try:
        yield
    except KeyboardInterrupt:
        print(
            f"interrupted; to continue from the run's last checkpoint:  aime train --resume {shown}",
            file=sys.stderr,
        )
        raise
