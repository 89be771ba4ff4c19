"""``aime lenses``: concept lenses on a trained world model: extract activations, train, evaluate."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aime.lenses.registry import Registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lenses",
        help="concept lenses: probes reading concepts from a world model's activations",
        description="Concept lenses (aime/lenses/README.md): extract a frozen world model's activations\n"
        "over replay episodes, train a bank of probes on them (Ray Train), evaluate the pack.",
        epilog="examples: aime lenses extract results/<run_id> --out results/<run_id>/activations\n"
        "          aime lenses train results/<run_id>/activations --out results/<run_id>/lenses\n"
        "          aime lenses eval results/<run_id>/lenses",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="lens_command", required=True, metavar="SUBCOMMAND")

    extract = commands.add_parser("extract", help="encode replay episodes into an activations dataset")
    extract.add_argument("checkpoint", help="a checkpoint directory or a run directory (its best checkpoint)")
    extract.add_argument("--out", required=True, metavar="DIR", help="where the activations dataset goes")
    extract.add_argument(
        "--episodes", metavar="DIR", help="replay store (default: the checkpoint's replay.root)"
    )
    extract.add_argument("--max-episodes", type=int, help="only the first N episodes by id")
    extract.add_argument("--actors", type=int, help="encoding actors (default: one per GPU, else 1)")
    extract.set_defaults(handler=run_extract)

    train = commands.add_parser("train", help="train a lens bank on an activations dataset (Ray Train)")
    train.add_argument("activations", help="an activations dataset (aime lenses extract)")
    train.add_argument("--out", required=True, metavar="PACK_DIR", help="where the lens pack goes")
    train.add_argument("--concepts", nargs="+", default=(), metavar="NAME", help="concepts (default: all)")
    train.add_argument(
        "--activations",
        dest="layers",
        nargs="+",
        default=(),
        metavar="NAME",
        help="activations (default: all)",
    )
    train.add_argument("--workers", type=int, default=2, help="Ray Train workers (default: 2)")
    train.add_argument("--epochs", type=int, default=60, help="at most this many epochs (default: 60)")
    train.add_argument("--batch-size", type=int, default=256, help="rows per worker per step (default: 256)")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    train.add_argument(
        "--patience", type=int, default=6, help="epochs without improvement before a lens stops"
    )
    train.add_argument("--no-standardise", action="store_true", help="no per-sample input standardisation")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser("eval", help="score a lens pack on its test episodes")
    evaluate.add_argument("pack", help="a lens pack (aime lenses train --out)")
    evaluate.add_argument("--activations", metavar="DIR", help="activations dataset (default: the pack's)")
    evaluate.add_argument(
        "--out", metavar="DIR", help="where lens_eval.json and the heatmap go (default: the pack)"
    )
    evaluate.set_defaults(handler=run_eval)
    _add_registry_parsers(commands)
    for sub in (extract, train):
        sub.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")


def run_extract(args: argparse.Namespace) -> int:
    from aime import checkpoints
    from aime.lenses.extract import ExtractOptions, extract
    from aime.run.ray_init import check_shared_locations, live_nodes
    from aime.storage.mirror import drop, shared_location

    try:  # before Ray starts: a typo fails in a second
        checkpoint = checkpoints.resolve(args.checkpoint)
    except checkpoints.IncompleteCheckpointError as error:
        raise ValueError(str(error)) from None
    try:
        cfg = checkpoints.checkpoint_config(checkpoint)
        _init_ray(args.address, cfg.ray)
        shared: dict[str, str | None] = {"checkpoint": shared_location(checkpoint)}
        shared |= {"--out": args.out, "episodes": args.episodes or cfg.replay.root}  # actors read, write
        check_shared_locations(live_nodes(), shared, shared_paths=cfg.ray.shared_paths)
        options = ExtractOptions(
            out=args.out, episodes=args.episodes, actors=args.actors, max_episodes=args.max_episodes
        )
        manifest = extract(checkpoint, options)
    finally:
        drop(checkpoints.run_dir_of(checkpoint))  # a run on shared storage: its pulled copy goes
    splits = ", ".join(f"{k} {len(v.episodes)} episodes / {v.rows} rows" for k, v in manifest.splits.items())
    dims = ", ".join(f"{k} {d}" for k, d in manifest.activations.items())
    print(f"activations ({dims}) of step {manifest.step} for concepts {', '.join(manifest.concepts)}")
    print(f"{splits}; held out by the run: {len(manifest.held_out)} (in test)")
    print(f"wrote {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from aime.lenses.activations import Manifest
    from aime.lenses.fit import FitConfig
    from aime.lenses.train import TrainOptions, choose_lenses, train_lenses
    from aime.run.ray_init import check_shared_locations, live_nodes

    fit = FitConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        standardise=not args.no_standardise,
        seed=args.seed,
    )
    options = TrainOptions(
        out=args.out, concepts=args.concepts, activations=args.layers, fit=fit, workers=args.workers
    )
    choose_lenses(Manifest.read(args.activations), options)  # unknown names fail before Ray starts
    _init_ray(args.address, None)
    # the lens workers read the activations; their checkpoints go beside them
    check_shared_locations(live_nodes(), {"activations": args.activations, "--out": args.out})
    info = train_lenses(args.activations, options)
    graduated = [lens for lens in info["lenses"] if lens["graduated"]]
    for lens in info["lenses"]:
        m = lens["metrics"]
        mark = "graduated" if lens["graduated"] else "not readable"
        train_f1, test_f1 = _f(m["train"]["f1"]), _f(m["test"]["f1"])
        print(f"{lens['concept']}@{lens['activation']}: train F1 {train_f1}, test F1 {test_f1}: {mark}")
    for entry in info["skipped"]:
        print(f"{entry['concept']}: skipped, {entry['reason']}")
    print(f"{len(graduated)} of {len(info['lenses'])} lenses graduated; wrote {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from aime.lenses.evaluate import EVAL_JSON, HEATMAP, evaluate_pack, summary_lines

    report = evaluate_pack(args.pack, args.activations, args.out)
    for line in summary_lines(report):
        print(line)
    out = args.out or args.pack
    print(f"wrote {out}/{EVAL_JSON} and {out}/{HEATMAP}")
    return 0


def _add_registry_parsers(commands: argparse._SubParsersAction) -> None:
    registry_help = "registry: a folder or pyarrow filesystem URI (default: $AIME_LENS_REGISTRY)"
    listing = commands.add_parser("list", help="lens packs in a registry, every version")
    push = commands.add_parser("push", help="store a lens pack as the next version of its name")
    push.add_argument("pack", help="a lens pack folder")
    push.add_argument("--name", help="registry name (default: the pack's name)")
    push.add_argument("--bf16", action="store_true", help="store the weights in bfloat16 (half the size)")
    pull = commands.add_parser("pull", help="copy a lens pack out of a registry")
    pull.add_argument("ref", metavar="NAME[:VERSION]", help="default version: the newest")
    pull.add_argument("--out", required=True, metavar="DIR")
    remove = commands.add_parser("remove", help="delete a version, or every version of a name")
    remove.add_argument("ref", metavar="NAME[:VERSION]", help="without a version: every version")
    for sub, handler in ((listing, run_list), (push, run_push), (pull, run_pull), (remove, run_remove)):
        sub.add_argument("--registry", metavar="URI", help=registry_help)
        sub.set_defaults(handler=handler)


def _registry(args: argparse.Namespace) -> Registry:
    import os

    from aime.lenses.registry import Registry

    uri = args.registry or os.environ.get("AIME_LENS_REGISTRY")
    if not uri:
        raise ValueError(
            "no registry: pass --registry URI (a folder, s3://..., gs://...) or set AIME_LENS_REGISTRY"
        )
    return Registry(uri)


def run_list(args: argparse.Namespace) -> int:
    entries = _registry(args).entries()
    print(
        f"{'name':<24} {'version':>7} {'lenses':>6} {'graduated':>9} {'dtype':<9} {'config hash':<16} created"
    )
    for entry in entries:
        s = entry.summary()
        print(
            f"{s['name']:<24} {s['version']:>7} {s['lenses']:>6} {s['graduated']:>9} {s['dtype']:<9} "
            f"{s['config_hash']:<16} {s['created_at']}"
        )
    return 0


def run_push(args: argparse.Namespace) -> int:
    registry = _registry(args)
    entry = registry.push(args.pack, args.name, bf16=args.bf16)
    print(f"pushed {args.pack} as {entry.name}:{entry.version} ({entry.info['dtype']}) to {registry.uri}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from aime.lenses.registry import parse_ref

    name, version = parse_ref(args.ref)
    entry = _registry(args).pull(name, args.out, version)
    print(f"pulled {entry.name}:{entry.version} into {args.out}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from aime.lenses.registry import parse_ref

    name, version = parse_ref(args.ref)
    removed = _registry(args).remove(name, version)
    print(f"removed {name} version(s) {', '.join(map(str, removed))}")
    return 0


def _init_ray(address: str | None, cfg: object | None) -> None:
    from aime.config import RayConfig
    from aime.run.ray_init import init_ray

    init_ray(cfg if isinstance(cfg, RayConfig) else RayConfig(), address=address)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
