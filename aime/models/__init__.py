"""The AIME world model in plain PyTorch (no Ray, no torch.distributed: collectives are injected).

``ModelConfig`` imports without torch (the config system loads it in every process); the model
classes load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aime.models.config import ModelConfig

if TYPE_CHECKING:
    from aime.models.outputs import LossOutput, WorldModelOutput
    from aime.models.world_model import WorldModel

_LAZY = {
    "LossOutput": "aime.models.outputs",
    "WorldModelOutput": "aime.models.outputs",
    "WorldModel": "aime.models.world_model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aime.models' has no attribute {name!r}")


__all__ = ["LossOutput", "ModelConfig", "WorldModel", "WorldModelOutput"]
