"""Fixtures for the single-process DeepSpeed tests (the worker's own functions, without Ray Train)."""

from __future__ import annotations

import os
import socket

import pytest


@pytest.fixture(scope="session")
def gloo_group():
    """torch.distributed with one gloo rank, as DeepSpeed needs, restored afterwards. One for the whole
    session: DeepSpeed keeps the first group it sees, so a second group would meet a destroyed one."""
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
