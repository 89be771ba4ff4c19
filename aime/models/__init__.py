"""The AIME world model in plain PyTorch (no Ray, no torch.distributed: collectives are injected)."""

from aime.models.config import ModelConfig
from aime.models.outputs import LossOutput, WorldModelOutput
from aime.models.world_model import WorldModel

__all__ = ["LossOutput", "ModelConfig", "WorldModel", "WorldModelOutput"]
