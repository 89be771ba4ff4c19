"""One ``seed`` drives everything: Python, NumPy, torch, and seeds derived per actor and per episode."""

from __future__ import annotations

import random

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed for the component named by ``keys``, independent across keys."""
    words = [seed] + [k if isinstance(k, int) else _word(k) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy"))
    try:
        import torch
    except ImportError:  # torch is optional for collection-only processes
        return
    torch.manual_seed(derive_seed(seed, "torch"))


def _word(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") & 0xFFFFFFFF
