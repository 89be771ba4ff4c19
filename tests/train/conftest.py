"""Fixtures for the single-process DeepSpeed tests (the worker's own functions, without Ray Train)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def _gloo_process_group() -> Iterator[dict[str, str]]:
    """One torch.distributed gloo group of one rank for the whole session: DeepSpeed keeps the first
    group it sees, so a second group would meet a destroyed one."""
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    with _environment(env):
        dist.init_process_group("gloo", rank=0, world_size=1)
    yield env
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_group(_gloo_process_group: dict[str, str]) -> Iterator[None]:
    """The group, with its rank variables in the environment only while a module's tests use it (a Ray
    started later in the session must not hand RANK or MASTER_PORT to its workers)."""
    with _environment(_gloo_process_group):
        yield
