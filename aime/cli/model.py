"""``aime model``: inspect the world model of a config."""

from __future__ import annotations

import argparse

from aime.cli.common import config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="world-model tools", description="World-model tools.")
    commands = parser.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    summary = commands.add_parser(
        "summary",
        help="parameters per component and FLOPs per sequence",
        description="Print parameters per component and forward/backward FLOPs per sequence.",
    )
    summary.add_argument(
        "--config",
        metavar="EXPERIMENT",
        help="experiment YAML (a path, or a name in cluster/configs/experiment/)",
    )
    summary.add_argument("--seq-len", type=int, help="steps per sequence (default: train.seq_len)")
    summary.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="config overrides, e.g. model=tiny"
    )
    summary.set_defaults(handler=run_summary, address=None)


def run_summary(args: argparse.Namespace) -> int:
    from aime.models.summary import summary

    cfg = config_from_args(args)
    print(summary(cfg.model, seq_len=args.seq_len or cfg.train.seq_len))
    return 0
