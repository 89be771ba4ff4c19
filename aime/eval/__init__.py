"""Evaluation of world-model checkpoints on held-out episodes (``aime eval``). See README.md."""
