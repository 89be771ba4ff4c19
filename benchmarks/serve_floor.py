"""What Ray Serve itself costs a request, with nothing behind it (prints JSON).

    python benchmarks/serve_floor.py [--requests 300] [--repeats 3]

Issue 12 holds aime's Serve overhead (p50 at one client minus the in-process model call) to 5 ms. This
measures the part no application code can take away, side by side in one run, over loopback from one
client sending requests back to back (keep-alive), after a warm-up:

- ``uvicorn``: a no-op FastAPI app under uvicorn in its own process (no Ray): the HTTP stack alone;
- ``serve_one``: the same app as one Serve ingress deployment (Serve's proxy, then the replica);
- ``serve_two``: aime's layout (``aime/serve/app.py``): the ingress calls a second, no-op deployment
  through its handle and answers with what it returns.

Each for ``GET /noop`` and for ``POST /echo`` with a body the size of aime's /v1/imagine request (5
base64 PNGs of 64x64 noise and the actions, about 84 KB) answered with a few bytes, so the body's
trip through the proxy counts too.
``serve_two``'s p50 is a floor under aime's overhead: no model and no request handling make it.

``serve_one_direct`` and ``serve_two_direct`` are the same two layouts with Serve's direct ingress,
as ``aime serve --direct-port`` runs it (``aime/serve/direct_ingress.py``): the client talks to the
ingress replica's own HTTP server, no proxy between, and the handle call goes over gRPC. Serve reads
its mode when it starts, so each mode's rows run in a process and a Ray of their own (the proxy
mode's with any ``RAY_SERVE_*`` mode variable of the caller's turned off); the modes alternate
``--repeats`` times (median and spread). uvicorn is measured in the proxy mode's process before its
Ray starts (before 2026-12-04 it was measured beside a running Ray).
"""

# No ``from __future__ import annotations``: Serve pickles the deployment classes by value, and
# FastAPI must see the real ``Request`` annotation in the replica, not the string "Request".
import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from load_clients import free_port  # noqa: E402

from aime.serve.direct_ingress import direct_ingress_env  # noqa: E402

MODES = ("proxy", "direct")  # Serve's default path through its proxy; direct ingress
SERVE_DEFAULTS = {  # the proxy mode is Serve's default whatever the caller's environment says
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
}
APP_SOURCE = """
from fastapi import FastAPI, Request
app = FastAPI()

@app.get("/noop")
async def noop():
    return {"ok": True}

@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return {"bytes": len(body)}
"""


def echo_body() -> bytes:
    """An /v1/imagine-sized JSON body: 5 base64 PNG-sized strings of noise, 15 action rows."""
    rng = np.random.default_rng(0)
    frames = [base64.b64encode(rng.bytes(64 * 64 * 3 + 200)).decode() for _ in range(5)]
    actions = rng.uniform(-1, 1, (15, 6)).round(3).tolist()
    return json.dumps({"context_frames": frames, "actions": actions}).encode()


def latencies(url: str, requests: int, body: bytes | None) -> dict[str, float]:
    """p50/p99 ms of ``requests`` sequential requests (after 20 warm-up ones) from one client."""
    import httpx

    with httpx.Client(timeout=30) as client:

        def one() -> float:
            started = time.perf_counter()
            if body is None:
                response = client.get(url + "/noop")
            else:
                response = client.post(
                    url + "/echo", content=body, headers={"content-type": "application/json"}
                )
            response.raise_for_status()
            return (time.perf_counter() - started) * 1e3

        for _ in range(20):
            one()
        ms = np.array([one() for _ in range(requests)])
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def wait_until_up(url: str, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url + "/noop", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_uvicorn(folder: str) -> tuple[subprocess.Popen, str]:
    with open(os.path.join(folder, "noop_app.py"), "w") as f:
        f.write(APP_SOURCE)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "noop_app:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    server = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
    except BaseException:
        stop(server)
        raise
    return server, url


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=10)


def deploy_serve(two: bool, url: str) -> None:
    """The no-op app as one Serve ingress (``two``: calling a no-op deployment through its handle),
    answering at ``url`` once up."""
    from ray import serve

    api = FastAPI()

    @serve.deployment(name="NoopModel")
    class NoopModel:
        async def __call__(self, size: int) -> int:
            return size

    @serve.deployment(name="NoopIngress")
    @serve.ingress(api)
    class NoopIngress:
        def __init__(self, model: Any = None):
            self.model = model

        @api.get("/noop")
        async def noop(self) -> dict[str, bool]:
            if self.model is not None:
                await self.model.remote(0)
            return {"ok": True}

        @api.post("/echo")
        async def echo(self, request: Request) -> dict[str, int]:
            size = len(await request.body())
            if self.model is not None:
                size = await self.model.remote(size)
            return {"bytes": size}

    app = NoopIngress.bind(NoopModel.bind()) if two else NoopIngress.bind()  # type: ignore[attr-defined]
    serve.run(app, name="floor", route_prefix="/")
    wait_until_up(url)


def measure(url: str, requests: int, body: bytes) -> dict[str, dict[str, float]]:
    return {"get": latencies(url, requests, None), "post": latencies(url, requests, body)}


def measure_mode(mode: str, requests: int) -> dict[str, dict[str, dict[str, float]]]:
    """One pass over ``mode``'s rows, in a Ray of its own (Serve reads its mode when it starts)."""
    import tempfile

    import ray
    from ray import serve

    body = echo_body()
    rows = {}
    direct_port = free_port() if mode == "direct" else 0
    os.environ.update(direct_ingress_env(direct_port) if mode == "direct" else SERVE_DEFAULTS)
    with tempfile.TemporaryDirectory() as folder:
        server = None
        try:
            if mode == "proxy":
                server, uvicorn_url = start_uvicorn(folder)
                rows["uvicorn"] = measure(uvicorn_url, requests, body)
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            url = f"http://127.0.0.1:{direct_port if mode == 'direct' else port}"
            for two in (False, True):
                deploy_serve(two, url)
                rows[("serve_two" if two else "serve_one") + ("_direct" if mode == "direct" else "")] = (
                    measure(url, requests, body)
                )
                serve.delete("floor")
        finally:
            if server is not None:
                stop(server)
            serve.shutdown()
            ray.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one pass, in a child
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure_mode(args.mode, args.requests)))
        return
    import ray

    started = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeats):
        for mode in MODES:  # alternating, each in a fresh process and Ray
            command = [sys.executable, __file__, "--mode", mode, "--requests", str(args.requests)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"serve_floor --mode {mode} failed:\n{done.stderr[-3000:]}")
            for name, row in json.loads(done.stdout.strip().splitlines()[-1]).items():
                rows.setdefault(name, []).append(row)
    summary = {
        name: {
            f"{method}_{stat}": {
                "median": statistics.median(r[method][stat] for r in runs),
                "min": min(r[method][stat] for r in runs),
                "max": max(r[method][stat] for r in runs),
            }
            for method in ("get", "post")
            for stat in ("p50_ms", "p99_ms")
        }
        for name, runs in rows.items()
    }
    report = {
        "benchmark": "serve_floor",
        "requests_per_cell": args.requests,
        "repeats": args.repeats,
        "body_bytes": len(echo_body()),
        "summary": summary,
        "runs": rows,
        "whole_run_seconds": round(time.perf_counter() - started, 1),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "ray": ray.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
