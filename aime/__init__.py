"""aime: distributed training, evaluation and serving of AIME-style latent world models on Ray."""

__version__ = "0.1.0"
