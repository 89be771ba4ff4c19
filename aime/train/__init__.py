"""World-model training with Ray Train + DeepSpeed (``aime train``, the training stage of ``aime run``).
See README.md."""
