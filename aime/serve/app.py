"""The Ray Serve application: an HTTP ingress and the model deployment behind it.

    HTTP --Ingress (FastAPI, http.py: limits, validation)--handle--> WorldModelServer replicas
         WorldModelServer: @serve.batch collects requests --> ServedModel (model.py) on a GPU or CPU

``build_app(args)`` is the application builder ``serve run serve/config.yaml`` and ``aime serve``
both use; ``args`` are ServeConfig's fields. Deployments stay thin: constructors load, methods
delegate.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from aime import checkpoints
from aime.lenses.stage import LENSES_DIR
from aime.serve.config import ServeConfig, serve_config
from aime.serve.http import create_api
from aime.serve.model import EncodeItem, ImagineItem, ServedModel
from aime.storage.mirror import shared_location

APP_NAME = "aime"
INGRESS_CPUS = 0.1  # the ingress parses JSON and PNGs; the model replicas hold the reserved CPUs


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
        for batched in (self.encode, self.imagine, self.concepts):
            batched.set_max_batch_size(cfg.max_batch_size)  # type: ignore[union-attr]
            batched.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)  # type: ignore[union-attr]
        # One thread runs every model call: the event loop stays free to collect the next batch, and
        # encode and imagine never run at once (imagine's per-sample noise is process-wide).
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aime-model")

    def info(self) -> dict[str, Any]:
        return self.model.info()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def encode(self, items: list[EncodeItem]) -> list[dict[str, np.ndarray]]:
        return await asyncio.get_running_loop().run_in_executor(self._runner, self.model.encode, items)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def imagine(self, items: list[ImagineItem]) -> list[np.ndarray]:
        return await asyncio.get_running_loop().run_in_executor(self._runner, self.model.imagine, items)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def concepts(self, items: list[EncodeItem]) -> list[dict[str, dict[str, Any]]]:
        return await asyncio.get_running_loop().run_in_executor(self._runner, self.model.concepts, items)


class HandleBackend:
    """http.Backend over the model deployment's handle."""

    def __init__(self, handle: DeploymentHandle):
        self.handle = handle

    async def info(self) -> dict[str, Any]:
        return await self.handle.info.remote()

    async def encode(self, item: EncodeItem) -> dict[str, np.ndarray]:
        return await self.handle.encode.remote(item)

    async def imagine(self, item: ImagineItem) -> np.ndarray:
        return await self.handle.imagine.remote(item)

    async def concepts(self, item: EncodeItem) -> dict[str, dict[str, Any]]:
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
    return Ingress.bind(model.bind(args), args)  # type: ignore[attr-defined]


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
