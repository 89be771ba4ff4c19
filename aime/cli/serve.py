"""``aime serve``: host a trained world model behind HTTP (Ray Serve) until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import time


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a trained world model over HTTP (Ray Serve)",
        description="Serve a checkpoint with Ray Serve: POST /v1/encode, /v1/imagine, /v1/concepts;\n"
        "GET /v1/model, /healthz, /readyz; interactive docs at /docs. Runs until Ctrl-C.\n"
        "Settings (key=value): max_batch_size, batch_wait_timeout_s, batch_buckets, max_frames,\n"
        "max_horizon, max_body_bytes, num_gpus, num_cpus, min_replicas, max_replicas,\n"
        "max_ongoing_requests, ingress_replicas, lens_pack, prefer (serve/README.md).",
        epilog="examples: aime serve results/<run_id>\n"
        "          aime serve results/<run_id>/checkpoints/train/step00001000 --port 9000 num_gpus=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint", help="a run directory (its best, else newest, checkpoint) or a checkpoint"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument(
        "--direct-port",
        type=_port,
        help="also answer on this port straight from the HTTP ingress replica (Ray Serve's direct "
        "ingress): no proxy hop, the lowest latency; a local Ray and ingress_replicas=1 only",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="serving settings, e.g. max_batch_size=32"
    )
    parser.set_defaults(handler=run)


def _port(text: str) -> int:
    """A TCP port, 1-65535 (0 would let the OS pick one nobody is told)."""
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {port}")
    return port


def serve_args(checkpoint: str, overrides: list[str]) -> dict:
    from aime.config.loader import parse_override

    args: dict = {"checkpoint": checkpoint}
    for item in overrides:
        key, value = parse_override(item)
        args[key] = value
    return args


def _prepare_direct_ingress(args: argparse.Namespace, settings: dict) -> None:
    """Refuse what direct ingress cannot do here, else set Serve's environment for the Ray we start."""
    import os

    import ray

    from aime.serve.config import serve_config
    from aime.serve.direct_ingress import check_port_free, direct_ingress_env

    if args.direct_port == args.port:
        raise ValueError(f"--direct-port must differ from --port ({args.port}): Serve's proxy keeps it")
    if serve_config(settings).ingress_replicas != 1:
        raise ValueError("--direct-port serves one ingress replica: set ingress_replicas=1")
    check_port_free(args.host, args.direct_port)
    needs = (
        "--direct-port needs a Ray that aime serve starts itself (Serve reads it when its controller starts)"
    )
    if args.address or os.environ.get("RAY_ADDRESS"):
        raise ValueError(f"{needs}: unset --address and RAY_ADDRESS")
    if ray.is_initialized():
        raise ValueError(f"{needs}: this process already runs one")
    os.environ.update(direct_ingress_env(args.direct_port))


def run(args: argparse.Namespace) -> int:
    from ray import serve

    from aime.checkpoints import IncompleteCheckpointError
    from aime.config import RayConfig
    from aime.run.ray_init import check_shared_locations, init_ray, live_nodes
    from aime.serve.app import APP_NAME, build_app

    settings = serve_args(args.checkpoint, args.overrides)
    if args.direct_port is not None:
        _prepare_direct_ingress(args, settings)  # before the checkpoint is read: cheap checks first
    try:
        application = build_app(settings)  # bad keys fail before Ray
    except IncompleteCheckpointError as error:
        raise ValueError(str(error)) from None
    init_ray(RayConfig(), address=args.address)
    check_shared_locations(live_nodes(), {"checkpoint": args.checkpoint})  # replicas load it on any node
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # deployment chatter: aime prints the URL
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://{args.host}:{args.port}"
    print(f"serving {args.checkpoint} at {url}  (API docs: {url}/docs; Ctrl-C stops)")
    if args.direct_port is not None:
        print(f"  and straight from the ingress replica at http://{args.host}:{args.direct_port}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        serve.delete(APP_NAME)
        serve.shutdown()
    return 0
