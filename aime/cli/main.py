"""Entry point of the ``aime`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aime.cli import collect, lenses, model, replay, run, serve, train, tune
from aime.cli import eval as evaluate
from aime.cli.common import setup_logging

COMMANDS = (run, collect, train, evaluate, tune, lenses, serve, replay, model)


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
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # argparse stops collecting `key=value` overrides at the first flag after them; take the rest too.
    stray = [item for item in unknown if item.startswith("-") or "=" not in item]
    if stray or (unknown and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or unknown)}")
    if unknown:
        args.overrides = [*args.overrides, *unknown]
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
