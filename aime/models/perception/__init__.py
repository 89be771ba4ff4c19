"""Perception: video tokenizer, Perceiver temporal bottleneck (c_t) and token predictor."""

from aime.models.perception.bottleneck import PerceiverBottleneck
from aime.models.perception.predictor import TokenPredictor
from aime.models.perception.quantizer import VectorQuantizer
from aime.models.perception.stream import PerceptionOutput, PerceptionStream
from aime.models.perception.tokenizer import Tokenizer

__all__ = [
    "PerceiverBottleneck",
    "PerceptionOutput",
    "PerceptionStream",
    "TokenPredictor",
    "Tokenizer",
    "VectorQuantizer",
]
