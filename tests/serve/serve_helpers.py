"""Serve test helpers: the running application's address and inputs shaped for its model."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Server:
    url: str
    info: dict[str, Any]
    checkpoint: str
    lens_pack: str  # a pack directory, or "none"

    def inputs(self, T: int = 4, H: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random frames (T, S, S, 3) uint8, actions (T, A) and future actions (H, A)."""
        rng = np.random.default_rng(seed)
        S, A = self.info["image_size"], self.info["action_dim"]
        frames = rng.integers(0, 256, (T, S, S, 3), dtype=np.uint8)
        return frames, rng.uniform(-1, 1, (T, A)), rng.uniform(-1, 1, (H, A))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lens_pack(directory: Path, checkpoint: Path, config_hash: str | None = None) -> Path:
    """A small untrained lens pack for ``checkpoint`` (two lenses on h and z): the plumbing, not a
    trained reader. ``config_hash`` overrides the model's (a pack for another model)."""
    import torch

    from aime import checkpoints
    from aime.lenses.bank import LensBank, LensSpec
    from aime.lenses.pack import LensPack

    model = checkpoints.load(checkpoint).model
    dims = {"h": model.cfg.dynamics.hidden_dim, "z": model.cfg.latent_dim}
    specs = [LensSpec("a", "h", dims["h"]), LensSpec("b", "z", dims["z"])]
    torch.manual_seed(0)
    lenses = [s.to_dict() | {"graduated": i == 0} for i, s in enumerate(specs)]
    world_model = {
        "checkpoint": str(checkpoint),
        "config_hash": config_hash or checkpoints.config_hash(checkpoint),
    }
    LensPack({"name": "test-pack", "world_model": world_model, "lenses": lenses}, LensBank(specs)).save(
        directory
    )
    return directory
