"""A real Serve application on 127.0.0.1 over the session's trained tiny checkpoint."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import Server, free_port, write_lens_pack


@pytest.fixture(scope="module")
def server(ray_local, trained_checkpoint, tmp_path_factory, request):
    """Started once per module and shut down after it, so later tests get the CPUs back; with a lens
    pack unless the module sets SERVE_LENSES = False."""
    from ray import serve

    from aime.serve.app import APP_NAME, build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    run_dir = trained_checkpoint.parents[2]  # <run>/checkpoints/train/stepN: served through the run dir
    lens_pack = "none"
    if getattr(request.module, "SERVE_LENSES", True):
        lens_pack = str(write_lens_pack(tmp_path_factory.mktemp("pack"), trained_checkpoint))
    args = {"checkpoint": str(run_dir), "max_batch_size": 8, "lens_pack": lens_pack}
    serve.run(build_app(args), name=APP_NAME, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    info = httpx.get(f"{url}/v1/model", timeout=30).json()
    yield Server(url=url, info=info, checkpoint=str(trained_checkpoint), lens_pack=lens_pack)
    serve.shutdown()
