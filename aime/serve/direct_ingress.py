"""Ray Serve's direct ingress: the HTTP ingress replica answers on a port of its own, no proxy hop.

By default a request goes client -> Serve's proxy -> the ingress replica -> (handle) -> the model
replica. With direct ingress the ingress replica runs its own HTTP server, so the proxy's hop goes;
gRPC carries the handle call to the model deployment. Measured on aime's layout with no-op
deployments (``benchmarks/serve_floor.py``, 2 CPUs, one client, 84 KB POST): 9.95 ms p50 through the
proxy, 4.29 ms straight to the ingress replica (``benchmarks/results/cpu/serve_floor.json``).

Serve reads these settings when its controller and replicas start, from the environment of the Ray
they start in: they apply to a Ray this process starts, never to a cluster it joins. Serve's proxy
keeps answering on its own port too (it balances over ingress replicas; the direct port is one
replica's).
"""

from __future__ import annotations

import socket


def direct_ingress_env(port: int) -> dict[str, str]:
    """The environment that makes Serve's ingress replica answer on ``port`` itself."""
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        # One ingress replica, one port: the range Serve picks replica ports from holds only it (Serve
        # 2.60 reads the range as [MIN, MAX), the upper end excluded).
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),
        "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",  # ingress -> model handle calls over gRPC
        "RAY_SERVE_PROXY_USE_GRPC": "0",  # ... but the proxy's path on --port stays Serve's default
        # Serve holds a stopping direct-ingress replica open (30 s by default) for a load balancer
        # to deregister it; with none in front, Ctrl-C should stop at once.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
        "RAY_SERVE_PORT_QUARANTINE_S": "0",  # a released port (a replaced replica's) reusable at once
    }


def check_port_free(host: str, port: int) -> None:
    """Fail now, naming the port, rather than as a replica that never starts (Serve blocks a port
    its replica could not bind, and the range holds only this one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as Serve binds it
    with socket.socket(family) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(f"--direct-port {port} on {host} is not free: {error.strerror}") from None
