"""Entry point of the ``aime`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aime.cli import collect, model, replay, run, train
from aime.cli import eval as evaluate
from aime.cli.common import setup_logging

COMMANDS = (run, collect, train, evaluate, replay, model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aime", description="Distributed training, evaluation and serving of AIME world models on Ray."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    from aime.config import ConfigError

    try:
        return int(args.handler(args) or 0)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"aime {args.command}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # a collection or training that gave up: the message says why
        print(f"aime {args.command}: failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
