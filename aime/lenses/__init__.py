"""Concept lenses: a batched probe bank trained with Ray Train on a world model's activations, evaluated,
packed and versioned (``aime lenses ...``, the lens stage of ``aime run``). See README.md."""
