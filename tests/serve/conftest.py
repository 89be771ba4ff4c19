"""A real Serve application on 127.0.0.1 over the session's trained tiny checkpoint."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import Server, free_port


@pytest.fixture(scope="module")
def server(ray_local, trained_checkpoint):
    """Started once per module and shut down after it, so later tests get the CPUs back."""
    from ray import serve

    from aime.serve.app import APP_NAME, build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    run_dir = trained_checkpoint.parents[2]  # <run>/checkpoints/train/stepN: served through the run dir
    serve.run(build_app({"checkpoint": str(run_dir), "max_batch_size": 8}), name=APP_NAME, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    info = httpx.get(f"{url}/v1/model", timeout=30).json()
    yield Server(url=url, info=info, checkpoint=str(trained_checkpoint))
    serve.shutdown()
