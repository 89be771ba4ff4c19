"""``aime replay``: inspect a replay store."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="inspect a replay store", description="Replay store tools.")
    commands = parser.add_subparsers(dest="replay_command", required=True, metavar="COMMAND")
    stats = commands.add_parser(
        "stats",
        help="episodes, steps, bytes, returns of a replay store",
        description="Print replay statistics read from the Parquet footers (no frames are read).",
    )
    stats.add_argument("root", help="replay root: a directory or a pyarrow URI")
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")
    stats.set_defaults(handler=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from aime.replay import ReplayStore, replay_stats

    stats = replay_stats(ReplayStore(args.root))
    print(json.dumps(asdict(stats), indent=2) if args.json else "\n".join(stats.lines()))
    return 0
