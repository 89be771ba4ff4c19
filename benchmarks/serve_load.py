"""Serving latency and throughput under load, batching on and off side by side (prints JSON).

    python benchmarks/serve_load.py [--preset default] [--clients 1 8 32] [--requests 200] [--seconds 60]
    python benchmarks/serve_load.py --checkpoint results/<run_id>      # a trained model instead

One run starts a local Ray and, one after the other, two copies of the aime application on
127.0.0.1: one with dynamic batching (max_batch_size = the largest client count) and one without
(max_batch_size 1), each with one model replica, each deleted before the next is deployed (so one
GPU serves both in turn). For /v1/imagine (context 5, horizon 10) and /v1/encode (T 16), at each client
count, every client sends requests back to back until ``--requests`` are done (or ``--seconds``
pass): p50/p95/p99 latency, requests/s, the count of 5xx answers and the medians of what the server
reported per answer (its Server-Timing and X-Aime-Batch-Size headers: requests per model call, the
call, the wait around it, the ingress's whole time). The clients are spread over ``--load-processes``
processes, so the load generator's own JSON work does not cap a fast server; ``--ingress-replicas``
sets the HTTP ingress replicas (with several counts, batching on is measured at each, side by side).
The floor is the model call in-process (ServedModel, no HTTP) for one request and for a batch of each
client count: Serve's overhead per request is p50 at one client minus the one-request floor, and the
floor's ``ceiling_speedup`` is the most batching could gain. Beside it,
``serve_overhead_vs_replica_model_p50_ms`` subtracts the median model time the replica reported for
the same requests instead (a difference of medians): where the model's own time varies more than
Serve's overhead (an untrained model on a GPU: 98-137 ms in one floor), the floor measured apart
can hide the overhead or inflate it. Without --checkpoint the model is an untrained
one of ``--preset`` at 64x64: speed does not depend on the weights.

Targets (issue 12): zero 5xx over the run; on a GPU (``--num-gpus`` > 0), batching >= 4x the
requests/s of no batching at 32 clients and Serve's overhead <= 5 ms p50, for each route.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
from load_clients import free_port, load, start_load_processes  # noqa: E402
from targets import check, only  # noqa: E402

from aime.serve.direct_ingress import direct_ingress_env  # noqa: E402


def untrained_checkpoint(preset: str, image_size: int, folder: Path) -> str:
    import torch

    from aime.checkpoints import write_model_files
    from aime.config import Config, dump_yaml, load_config
    from aime.models.world_model import WorldModel

    cfg = load_config(
        Config, None, [f"model={preset}", f"env.image_size={image_size}", f"model.image_size={image_size}"]
    )
    torch.manual_seed(0)
    directory = folder / "checkpoints" / "train" / "step00000000"
    write_model_files(directory, WorldModel(cfg.model).state_dict(), dump_yaml(cfg), step=0, tag="untrained")
    return str(directory)


def bodies(info: dict[str, Any], context: int, horizon: int, encode_steps: int) -> dict[str, dict[str, Any]]:
    from aime.serve.codec import encode_png

    rng = np.random.default_rng(0)
    S, A = info["image_size"], info["action_dim"]
    frames = [
        encode_png(f) for f in rng.integers(0, 256, (max(context, encode_steps), S, S, 3), dtype=np.uint8)
    ]
    action = lambda n: rng.uniform(-1, 1, (n, A)).round(3).tolist()  # noqa: E731
    return {
        "imagine": {
            "context_frames": frames[:context],
            "context_actions": action(context),
            "future_actions": action(horizon),
            "seed": 1,
        },
        "encode": {"frames": frames[:encode_steps], "actions": action(encode_steps)},
    }


def floor_ms(
    checkpoint: str, body: dict[str, Any], kind: str, threads: int, batches: list[int], buckets: list[int]
) -> dict[str, Any]:
    """The model call in-process, with the replica's torch threads and before Ray starts (nothing else
    running): for one request (what no server can beat) and for a batch of each client count (what
    batching could gain at most: ``ceiling_speedup`` is requests/s at the largest batch over one)."""
    import torch

    from aime.serve.codec import frames_to_array
    from aime.serve.model import EncodeItem, ImagineItem, ServedModel

    torch.set_num_threads(threads)
    model = ServedModel(checkpoint, prefer="newest", buckets=buckets)
    if kind == "imagine":
        frames = frames_to_array(body["context_frames"], "context_frames")
        actions = [np.asarray(body[k], np.float32) for k in ("context_actions", "future_actions")]
        item: Any = ImagineItem(frames, *actions, 1.0, 1)
        call: Any = model.imagine
    else:
        frames = frames_to_array(body["frames"], "frames")
        item = EncodeItem(frames, np.asarray(body["actions"], np.float32), np.arange(len(frames)) == 0)
        call = model.encode
    by_batch: dict[str, float] = {}
    for batch in sorted({1, *batches}):
        call([item] * batch)  # warm this shape
        times = []
        for _ in range(max(3, 30 // batch)):
            started = time.perf_counter()
            call([item] * batch)
            times.append((time.perf_counter() - started) * 1e3)
        by_batch[str(batch)] = round(float(np.median(times)), 2)
        if batch == 1:
            single = {"p50_ms": by_batch["1"], "min_ms": round(min(times), 2), "max_ms": round(max(times), 2)}
    top = str(max(batches))
    ceiling = int(top) * by_batch["1"] / by_batch[top]
    return single | {"call_p50_ms_by_batch": by_batch, "ceiling_speedup": round(ceiling, 2)}


def serve_targets(results: dict[str, Any], clients: list[int], num_gpus: float) -> dict[str, Any]:
    on_gpu = only(num_gpus > 0, "a GPU target; this run's replicas ran on the CPU")
    at_32 = on_gpu or only(clients[-1] == 32, f"set at 32 clients; this run's largest: {clients[-1]}")
    cells = [cell for kind in results.values() for v in kind.values() if isinstance(v, list) for cell in v]
    out: dict[str, tuple[Any, ...]] = {"errors_5xx": (sum(cell["5xx"] for cell in cells), "==", 0)}
    for kind, result in results.items():
        speedup = result[f"batching_speedup_at_{clients[-1]}_clients"]
        out[f"{kind}_batching_speedup_at_32_clients"] = (speedup, ">=", 4.0, at_32)
        out[f"{kind}_serve_overhead_p50_ms"] = (result.get("serve_overhead_p50_ms"), "<=", 5.0, on_gpu)
    return check(out)


def _model_info(checkpoint: str) -> dict[str, Any]:
    from aime import checkpoints

    cfg = checkpoints.checkpoint_config(checkpoints.resolve(checkpoint))
    return {"image_size": cfg.model.image_size, "action_dim": cfg.model.action_dim}


def measure_app(
    name: str,
    extra: dict[str, Any],
    base: str,
    requests: dict[str, Any],
    checkpoint: str,
    args: Any,
    pool: Any,
) -> dict[str, Any]:
    """Deploy one copy of the application under ``/name``, load each route at each client count, then
    delete it: one application at a time, so each has the replica's GPU (or cores) to itself."""
    from ray import serve

    from aime.serve.app import build_app

    started = time.perf_counter()
    batch = max(args.clients)
    app = build_app(
        {"checkpoint": checkpoint, "num_gpus": args.num_gpus, "max_ongoing_requests": 2 * batch, **extra}
    )
    prefix = "" if args.direct_ingress else f"/{name}"  # a replica's own port serves its app alone
    serve.run(app, name=name, route_prefix=prefix or "/")

    model = wait_for_model(f"{base}{prefix}/v1/model")
    out: dict[str, Any] = {"startup_seconds": time.perf_counter() - started, "model": model}
    for kind, body in requests.items():
        url = f"{base}{prefix}/v1/{kind}"
        out[kind] = [
            load(pool, args.load_processes, url, body, c, args.requests, args.seconds) for c in args.clients
        ]
    serve.delete(name)
    return out


def wait_for_model(url: str, seconds: float = 120) -> dict[str, Any]:
    """GET /v1/model once the application answers (a direct-ingress port opens with its replica)."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=60).raise_for_status().json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def app_settings(batch: int, buckets: list[int], ingress_replicas: list[int]) -> dict[str, dict[str, Any]]:
    """The applications to measure: batching on and off with the most ingress replicas asked for
    ("batched", "unbatched"), and batching on with each smaller count ("batched_ingress_N")."""
    most = max(ingress_replicas)
    batched = {"max_batch_size": batch, "batch_buckets": buckets}
    fewer = sorted(set(ingress_replicas) - {most})
    settings = {f"batched_ingress_{n}": batched | {"ingress_replicas": n} for n in fewer}
    return settings | {
        "batched": batched | {"ingress_replicas": most},
        "unbatched": {"max_batch_size": 1, "ingress_replicas": most},
    }


def compare(
    measured: dict[str, dict[str, Any]], floors: dict[str, dict[str, float]], clients: list[int]
) -> dict[str, Any]:
    """Per route: the floor, both applications' cells, Serve's overhead at one client (p50 minus the
    floor) and batching's speed-up in requests/s at the largest client count."""
    results: dict[str, Any] = {}
    for kind, floor in floors.items():
        results[kind] = {"floor_in_process": floor} | {name: cells[kind] for name, cells in measured.items()}
        if clients[0] == 1:
            single = results[kind]["unbatched"][0]
            results[kind]["serve_overhead_p50_ms"] = round(single["p50_ms"] - floor["p50_ms"], 2)
            model_ms = (single.get("server_p50") or {}).get("model_ms")
            if model_ms is not None:  # the same requests' own model time: no floor measured apart
                overhead = round(single["p50_ms"] - model_ms, 2)
                results[kind]["serve_overhead_vs_replica_model_p50_ms"] = overhead
        top = {name: results[kind][name][-1]["requests_per_second"] for name in measured}
        results[kind][f"batching_speedup_at_{clients[-1]}_clients"] = round(
            top["batched"] / top["unbatched"], 2
        )
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", help="a run or checkpoint directory (default: an untrained --preset model)"
    )
    parser.add_argument("--preset", default="default", help="model preset for the untrained model")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="requests per cell (bounded)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per cell")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="per model replica")
    parser.add_argument(
        "--ingress-replicas",
        type=int,
        nargs="+",
        default=[1],
        help="HTTP ingress replicas; with several counts, batching on is measured at each",
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        default=max(1, min(8, (os.cpu_count() or 1) // 4)),
        help="processes the clients are spread over (default: a quarter of the cores, 1 to 8)",
    )
    parser.add_argument(
        "--direct-ingress",
        action="store_true",
        help="send the requests straight to the ingress replica's own port (Serve's direct ingress, "
        "as `aime serve --direct-port` runs it) rather than through Serve's proxy",
    )
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.load_processes < 1:
        parser.error(f"--load-processes must be >= 1, got {args.load_processes}")
    if args.direct_ingress and args.ingress_replicas != [1]:
        parser.error("--direct-ingress serves one ingress replica: leave --ingress-replicas at 1")
    return args


def main() -> None:
    args = parse_args()

    import ray
    from ray import serve

    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="aime-serve-bench-"))
    checkpoint = args.checkpoint or untrained_checkpoint(args.preset, args.image_size, folder)
    info = _model_info(checkpoint)
    requests = bodies(info, context=5, horizon=10, encode_steps=16)
    batch = max(args.clients)
    buckets = sorted({1, 2, 4, 8, 16, 32, batch})
    floors = {
        kind: floor_ms(checkpoint, body, kind, 1, args.clients, buckets) for kind, body in requests.items()
    }
    pool = start_load_processes(args.load_processes)
    setup_s = time.perf_counter() - started
    port, direct_port = free_port(), free_port()
    while direct_port == port:
        direct_port = free_port()
    if args.direct_ingress:
        os.environ.update(direct_ingress_env(direct_port))  # read by the Ray started next
    ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    ray_and_serve_s = time.perf_counter() - started - setup_s
    settings = app_settings(batch, buckets, args.ingress_replicas)
    base = f"http://127.0.0.1:{direct_port if args.direct_ingress else port}"
    measured = {
        n: measure_app(n, extra, base, requests, checkpoint, args, pool) for n, extra in settings.items()
    }
    pool.shutdown()
    deploy_s = {name: round(m.pop("startup_seconds"), 1) for name, m in measured.items()}
    # Ray and Serve started plus each application deployed until /v1/model answered (before 2026-12-03
    # both applications deployed at once and this was the time to the first answer of either).
    startup_s = ray_and_serve_s + sum(deploy_s.values())
    info = measured["batched"]["model"]
    for cells in measured.values():
        cells.pop("model")
    results = compare(measured, floors, args.clients)
    serve.shutdown()
    ray.shutdown()
    report = {
        "benchmark": "serve_load",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "gpus_per_replica": args.num_gpus,
            "load_processes": args.load_processes,
        },
        "model": {
            "checkpoint": info["checkpoint"],
            "image_size": info["image_size"],
            "preset": None if args.checkpoint else args.preset,
        },
        "path": "direct ingress" if args.direct_ingress else "Serve's proxy",
        "floor_seconds": round(setup_s, 1),
        "serve_startup_seconds": round(startup_s, 1),
        "deploy_seconds": deploy_s,
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": results,
        "targets": serve_targets(results, args.clients, args.num_gpus),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
