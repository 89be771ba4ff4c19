"""``aime replay``: inspect a replay store, and import offline datasets into one."""

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
    add_import_parser(commands)


def add_import_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import",
        help="import an offline dataset (DMC-VB TFRecords, Dreamer npz) into a replay store",
        description="Import episodes into a replay store, in parallel Ray tasks, resumably: files "
        "imported before are skipped. Unreadable records are reported and skipped. Formats and the "
        "action alignment: docs/REPLAY.md, 'Importing'.",
    )
    formats = parser.add_subparsers(dest="import_format", required=True, metavar="FORMAT")
    dmcvb = formats.add_parser(
        "dmcvb",
        help="DMC Vision Benchmark RLDS TFRecord files",
        description="Import DMC-VB episodes (RLDS tf.train.Example records in *.tfrecord* files; no "
        "TensorFlow needed). Task, policy level and distractor setting are read from the path "
        "(locomotion/<domain>_<task>/<policy>/<distractor>/).",
        epilog="example: aime replay import dmcvb gs://dmc_vision_benchmark/dmc_vision_benchmark/locomotion"
        " --subset walker_walk/expert/none --out results/replay-dmcvb",
    )
    dmcvb.add_argument("source", help="a directory, a file, or a pyarrow URI (gs://, s3://)")
    dmcvb.add_argument(
        "--subset",
        action="append",
        default=[],
        metavar="PATH",
        help="import only files whose path contains these components, e.g. walker_walk/expert/none "
        "(repeatable)",
    )
    dmcvb.add_argument("--task", help="dm_control task (domain-task) when the path does not say it")
    dmcvb.add_argument(
        "--pixel-key", default="pixels", help="the camera observation to import (default: pixels)"
    )
    npz = formats.add_parser(
        "npz",
        help="Dreamer-style .npz episodes (image, action, reward, is_first, is_last, is_terminal)",
        description="Import one-episode .npz files. Dreamer stores the action that led to each image; "
        "the importer shifts actions and rewards one row earlier into the store's alignment.",
        epilog="example: aime replay import npz ~/logdir/replay --task cheetah-run --out results/replay",
    )
    npz.add_argument("source", help="a directory of .npz files (searched recursively), a file, or a URI")
    npz.add_argument("--task", required=True, help="dm_control task of the episodes, domain-task")
    for sub in (dmcvb, npz):
        sub.add_argument("--out", required=True, help="replay root: a directory or a pyarrow URI")
        sub.add_argument("--workers", type=int, help="files imported at once (default: the Ray CPUs)")
        sub.add_argument("--chunk-steps", type=int, help="split episodes into files of this many rows")
        sub.add_argument("--force", action="store_true", help="re-import files imported before")
        sub.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
        sub.add_argument("--json", action="store_true", help="print the summary as JSON")
        sub.set_defaults(handler=run_import_command)


def run_stats(args: argparse.Namespace) -> int:
    from aime.replay import ReplayStore, replay_stats

    store = ReplayStore(args.root)
    if not store.exists():
        raise FileNotFoundError(f"no replay store at {args.root}")
    stats = replay_stats(store)
    print(json.dumps(asdict(stats), indent=2) if args.json else "\n".join(stats.lines()))
    return 0


def run_import_command(args: argparse.Namespace) -> int:
    from aime.config import RayConfig
    from aime.replay.importers import DmcvbImporter, NpzImporter, WriteSettings, run_import
    from aime.run.ray_init import check_shared_locations, init_ray, live_nodes

    importer: DmcvbImporter | NpzImporter
    if args.import_format == "dmcvb":
        importer = DmcvbImporter(args.source, tuple(args.subset), args.task, pixel_key=args.pixel_key)
    else:
        importer = NpzImporter(args.source, args.task)
    init_ray(RayConfig(address=args.address))
    # the import workers read the source and write the store
    check_shared_locations(live_nodes(), {"source": args.source, "--out": args.out})
    settings = WriteSettings(out=args.out, chunk_steps=args.chunk_steps)
    summary = run_import(
        importer, settings, workers=args.workers, force=args.force, progress=not args.no_progress
    )
    print(json.dumps(asdict(summary), indent=2) if args.json else "\n".join(["imported:", *summary.lines()]))
    return 0
