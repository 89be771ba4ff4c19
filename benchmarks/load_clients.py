"""The load generator of ``serve_load.py``: clients spread over spawned processes, all starting at
one moment, each sending one route's request back to back; latencies, errors and what the server said
of each answer."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

WARM_UP_SECONDS = 1.5  # for each load process's warm-up request, before the cell's common start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load_part(
    url: str, body: dict[str, Any], clients: int, requests: int, seconds: float, start_at: float
) -> dict[str, Any]:
    """``clients`` async clients in this process sending requests back to back from ``start_at``
    (wall clock, shared by every load process): latencies, error counts, when the last answer came
    and what the server said of each answer (Server-Timing, X-Aime-Batch-Size)."""
    import httpx

    latencies: list[float] = []
    server: dict[str, list[float]] = {"batch": [], "model": [], "wait": [], "app": []}
    errors = {"5xx": 0, "4xx": 0, "transport": 0}
    remaining = [requests]

    async def client(http: httpx.AsyncClient) -> None:
        while remaining[0] > 0 and time.time() < start_at + seconds:
            remaining[0] -= 1
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
            except httpx.HTTPError:
                errors["transport"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 500:
                errors["5xx"] += 1
            elif response.status_code >= 400:
                errors["4xx"] += 1
            else:
                _server_side(response.headers, server)

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await http.post(url, json=body)  # warm: connection, first batch shapes
        await asyncio.sleep(max(0.0, start_at - time.time()))  # every process starts together
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return {"latencies": latencies, "server": server, "errors": errors, "ended": time.time()}


def _server_side(headers: Any, into: dict[str, list[float]]) -> None:
    into["batch"].append(float(headers["x-aime-batch-size"]))
    for part in headers["server-timing"].split(","):
        name, _, ms = part.strip().partition(";dur=")
        into[name].append(float(ms))


def _load_part_sync(args: tuple[str, dict[str, Any], int, int, float, float]) -> dict[str, Any]:
    return asyncio.run(load_part(*args))


def start_load_processes(processes: int) -> ProcessPoolExecutor:
    """The load processes, spawned (not forked) and started now, before Ray: reused by every cell."""
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    list(pool.map(time.sleep, [0.5] * processes))  # a task each at once: every process starts
    return pool


def load(
    pool: Any, processes: int, url: str, body: dict[str, Any], clients: int, requests: int, seconds: float
) -> dict[str, Any]:
    """One cell: ``clients`` clients spread over up to ``processes`` load processes (so the load
    generator's own JSON and HTTP work is not what limits a fast server), all starting at one moment
    after their warm-up requests; requests/s is over the time from that moment to the last answer."""
    splits = min(processes, clients)
    shares = [len(part) for part in np.array_split(np.arange(clients), splits)]
    quotas = [len(part) for part in np.array_split(np.arange(requests), splits)]
    start_at = time.time() + WARM_UP_SECONDS
    jobs = [(url, body, n, q, seconds, start_at) for n, q in zip(shares, quotas, strict=True)]
    parts = list(pool.map(_load_part_sync, jobs))
    ms = np.concatenate([part["latencies"] for part in parts]) * 1e3
    server = {k: np.concatenate([part["server"][k] for part in parts]) for k in parts[0]["server"]}
    median = lambda v: round(float(np.median(v)), 2) if len(v) else None  # noqa: E731
    return {
        "clients": clients,
        "requests": len(ms),
        "requests_per_second": round(len(ms) / (max(part["ended"] for part in parts) - start_at), 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        **{kind: sum(part["errors"][kind] for part in parts) for kind in ("5xx", "4xx", "transport")},
        # Medians of what the server reported: requests per model call, the call, the time around it
        # (queue, batching wait, transport) and all of it in the ingress; p50 - app is the HTTP proxy
        # and the load generator.
        "server_p50": {
            "batch_size": median(server["batch"]),
            "model_ms": median(server["model"]),
            "wait_ms": median(server["wait"]),
            "app_ms": median(server["app"]),
        },
    }
