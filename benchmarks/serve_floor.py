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
trip through the proxy counts too. The rows alternate ``--repeats`` times (median and spread).
``serve_two``'s p50 is a floor under aime's overhead: no model and no request handling make it.
"""

# No ``from __future__ import annotations``: Serve pickles the deployment classes by value, and
# FastAPI must see the real ``Request`` annotation in the replica, not the string "Request".
import argparse
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def deploy_serve(two: bool, port: int) -> str:
    """The no-op app as one Serve ingress (``two``: calling a no-op deployment through its handle)."""
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
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    import tempfile

    import ray
    from ray import serve

    started = time.perf_counter()
    body = echo_body()
    rows: dict[str, list[dict[str, Any]]] = {"uvicorn": [], "serve_one": [], "serve_two": []}
    with tempfile.TemporaryDirectory() as folder:
        server, uvicorn_url = start_uvicorn(folder)
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            for _ in range(args.repeats):
                for name in rows:
                    url = uvicorn_url if name == "uvicorn" else deploy_serve(name == "serve_two", port)
                    rows[name].append(
                        {
                            "get": latencies(url, args.requests, None),
                            "post": latencies(url, args.requests, body),
                        }
                    )
                    if name != "uvicorn":
                        serve.delete("floor")
        finally:
            stop(server)
            serve.shutdown()
            ray.shutdown()
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
        "body_bytes": len(body),
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
