"""Serve test helpers: the running application's address and inputs shaped for its model."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Server:
    url: str
    info: dict[str, Any]
    checkpoint: str

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
