"""The Ray Serve application: an HTTP ingress and the model deployment behind it.

    HTTP --Ingress (FastAPI, http.py: limits, validation)--handle--> WorldModelServer replicas
         WorldModelServer: Batcher (batcher.py) collects requests --> ServedModel (model.py) on a GPU or CPU

``build_app(args)`` is the application builder ``serve run serve/config.yaml`` and ``aime serve``
both use; ``args`` are ServeConfig's fields. Deployments stay thin: constructors load, methods
delegate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from aime import checkpoints
from aime.lenses.stage import LENSES_DIR
from aime.serve.batcher import Batcher
from aime.serve.config import ServeConfig, serve_config
from aime.serve.http import create_api
from aime.serve.model import EncodeItem, ImagineItem, Served, ServedModel
from aime.storage.mirror import shared_location

APP_NAME = "aime"
INGRESS_CPUS = 0.1  # the ingress parses JSON and PNGs; the model replicas hold the reserved CPUs
INGRESS_PROBE_ROOM = 8  # requests an ingress replica admits beyond its share of the model's
Item = TypeVar("Item")
R = TypeVar("R")


@serve.deployment(name="WorldModelServer")
class WorldModelServer:
    def __init__(self, args: dict[str, Any]):
        import torch

        cfg = serve_config(args)
        torch.set_num_threads(max(1, int(cfg.num_cpus)))
        lens_pack = None if cfg.lens_pack == "none" else cfg.lens_pack  # build_app resolved "auto"
        self.model = ServedModel(
            cfg.checkpoint, prefer=cfg.prefer, buckets=cfg.batch_buckets, lens_pack=lens_pack
        )
        # One thread runs every model call: the event loop stays free to queue the next batch, and
        # encode and imagine never run at once (imagine's per-sample noise is process-wide).
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aime-model")
        self._batching = (cfg.max_batch_size, cfg.batch_wait_timeout_s)
        self._batchers: dict[str, Batcher] = {}
        self._model_lock = asyncio.Lock()  # the routes' batchers share it: one model call at a time

    def info(self) -> dict[str, Any]:
        return self.model.info()

    async def encode(self, item: EncodeItem) -> Served[dict[str, np.ndarray]]:
        return await self._batched("encode", self.model.encode, item)

    async def imagine(self, item: ImagineItem) -> Served[np.ndarray]:
        return await self._batched("imagine", self.model.imagine, item)

    async def concepts(self, item: EncodeItem) -> Served[dict[str, dict[str, Any]]]:
        return await self._batched("concepts", self.model.concepts, item)

    async def _batched(self, route: str, call: Callable[[Sequence[Item]], list[R]], item: Item) -> Served[R]:
        """``item``'s answer from a batched model call (batcher.py), made in the replica's event loop
        on first use."""
        if route not in self._batchers:
            self._batchers[route] = Batcher(partial(self._run, call), *self._batching, self._model_lock)
        return await self._batchers[route](item)

    async def _run(self, call: Callable[[Sequence[Item]], list[R]], items: list[Item]) -> list[Served[R]]:
        """One model call for the batch on the model thread; each answer carries the batch's size and
        the call's time (the ingress turns them into Server-Timing headers)."""

        def timed() -> tuple[list[R], float]:
            started = time.perf_counter()
            results = call(items)
            return results, (time.perf_counter() - started) * 1e3

        results, model_ms = await asyncio.get_running_loop().run_in_executor(self._runner, timed)
        return [Served(result, len(items), model_ms) for result in results]


class HandleBackend:
    """http.Backend over the model deployment's handle."""

    def __init__(self, handle: DeploymentHandle):
        self.handle = handle

    async def info(self) -> dict[str, Any]:
        return await self.handle.info.remote()

    async def encode(self, item: EncodeItem) -> Served[dict[str, np.ndarray]]:
        return await self.handle.encode.remote(item)

    async def imagine(self, item: ImagineItem) -> Served[np.ndarray]:
        return await self.handle.imagine.remote(item)

    async def concepts(self, item: EncodeItem) -> Served[dict[str, dict[str, Any]]]:
        return await self.handle.concepts.remote(item)


@serve.deployment(name="Ingress", ray_actor_options={"num_cpus": INGRESS_CPUS})
@serve.ingress()
class Ingress:
    def __init__(self, model: DeploymentHandle, args: dict[str, Any]):
        self.cfg = serve_config(args)
        self.model = model

    def __serve_build_asgi_app__(self) -> Any:
        return create_api(HandleBackend(self.model), self.cfg)


def build_app(args: dict[str, Any]) -> Any:
    """The application for ``args`` (ServeConfig's fields); fails here, not in a replica, on a bad
    key or a path that holds no complete checkpoint."""
    cfg = serve_config(dict(args))
    checkpoint = checkpoints.resolve(cfg.checkpoint, cfg.prefer)  # replicas load exactly this one
    # On shared storage replicas (on any node) read the URI; locally, the path.
    args = dict(args, checkpoint=shared_location(checkpoint), prefer="newest")
    pack = _lens_pack(cfg.lens_pack, checkpoint)
    args["lens_pack"] = shared_location(pack) if pack != "none" else pack
    model = WorldModelServer.options(  # type: ignore[attr-defined]
        ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
        max_ongoing_requests=cfg.max_ongoing_requests,
        **_replicas(cfg),
    )
    ingress = Ingress.options(**ingress_options(cfg))  # type: ignore[attr-defined]
    return ingress.bind(model.bind(args), args)


def ingress_options(cfg: ServeConfig) -> dict[str, int]:
    """The ingress replicas together admit what the model replicas can hold, plus room for health
    probes and /v1/model at full load. At Serve's default (5 ongoing requests per replica) one ingress
    would cap every batch at 5 however many clients wait."""
    model_capacity = cfg.max_ongoing_requests * cfg.max_replicas
    per_replica = -(-model_capacity // cfg.ingress_replicas) + INGRESS_PROBE_ROOM
    return {"num_replicas": cfg.ingress_replicas, "max_ongoing_requests": per_replica}


def _lens_pack(setting: str, checkpoint: Path) -> str:
    """The pack directory replicas load, or "none"; a pack for another model fails here, by name."""
    if setting == "none":
        return "none"
    if setting == "auto":
        found = checkpoints.run_dir_of(checkpoint) / LENSES_DIR / "pack"
        if not (found / "pack.json").is_file():
            return "none"
        setting = str(found)
    from aime.lenses.pack import LensPack

    LensPack.load(setting, world_model=checkpoint)  # PackMismatchError names both config hashes
    return setting


def _replicas(cfg: ServeConfig) -> dict[str, Any]:
    if cfg.min_replicas == cfg.max_replicas:
        return {"num_replicas": cfg.min_replicas}
    return {
        "autoscaling_config": {
            "min_replicas": cfg.min_replicas,
            "max_replicas": cfg.max_replicas,
            "target_ongoing_requests": max(1, cfg.max_batch_size),
        }
    }
