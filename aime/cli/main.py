"""Entry point of the ``aime`` console script."""

from __future__ import annotations

import argparse
import sys
import traceback
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


def entry() -> int:
    """The ``aime`` console script: ``main`` with the driver's own stderr filtered too (a process-wide
    change, so only where aime owns the process, not where a program calls ``main``)."""
    return main(filter_native_stderr=True)


def main(argv: Sequence[str] | None = None, *, filter_native_stderr: bool = False) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # argparse stops collecting `key=value` overrides at the first flag after them; take the rest too.
    stray = [item for item in unknown if item.startswith("-") or "=" not in item]
    if stray or (unknown and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or unknown)}")
    if unknown:
        args.overrides = [*args.overrides, *unknown]
    setup_logging(args.verbose)
    if filter_native_stderr:
        from aime import console

        console.filter_native_stderr()
    from aime.config import ConfigError

    try:
        return int(args.handler(args) or 0)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        _report(args, f"error: {error}")
        return 2
    except RuntimeError as error:  # a collection or training that gave up: the message says why
        _report(args, f"failed: {error}")
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback; the shell's convention for SIGINT
        print(f"aime {args.command}: interrupted", file=sys.stderr)
        return 130


def _report(args: argparse.Namespace, message: str) -> None:
    """One line for the user; with -v also the traceback (a real bug can hide behind a ValueError)."""
    print(f"aime {args.command}: {message}", file=sys.stderr)
    if args.verbose:
        traceback.print_exc()
    else:
        print(f"aime {args.command}: run with -v for the traceback", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(entry())
