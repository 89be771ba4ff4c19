"""One ``seed`` drives everything: Python, NumPy, torch, and seeds derived per actor and per episode."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed for the component named by ``keys``, independent across keys."""
    words = [seed] + [k if isinstance(k, int) else _word(k) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def seed_everything(seed: int, *, torch_rng: bool = True) -> None:
    """Seed Python's and NumPy's global generators, and torch's unless ``torch_rng`` is False: a
    process that never draws from torch (``aime collect``'s driver: its actors seed their own
    generators from ``derive_seed``) then does not import it (about 1 s here, more for a CUDA build,
    spent while the collection waits)."""
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy"))
    if not torch_rng:
        return
    try:
        import torch
    except ImportError:  # torch is optional for collection-only processes
        return
    torch.manual_seed(derive_seed(seed, "torch"))


def _word(text: str) -> int:
    """The whole name, hashed: names that share a prefix get unrelated seeds."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")
