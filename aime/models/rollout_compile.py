"""torch.compile of the model's per-frame steps (``WorldModel.compile_rollout``): modes and the cache.

Kept apart from the math (``rollout.py``'s posterior step, ``imagine.py``'s imagined steps): this is
process-wide compile machinery. Each compiled step is built once per process, function and mode;
shapes are static within a run, so it compiles on the first frame and every later frame (and step)
reuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch

RolloutCompileMode = Literal["default", "reduce-overhead", "max-autotune"]
ROLLOUT_COMPILE_MODES: tuple[str, ...] = get_args(RolloutCompileMode)
CUDA_GRAPH_MODES = frozenset({"reduce-overhead", "max-autotune"})  # the modes that replay CUDA graphs

_COMPILED: dict[tuple[Callable[..., Any], str], Callable[..., Any]] = {}


def check_mode(mode: str | None) -> None:
    if mode is not None and mode not in ROLLOUT_COMPILE_MODES:
        raise ValueError(f"rollout compile mode must be one of {ROLLOUT_COMPILE_MODES} or None, got {mode!r}")


def compiled(step: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``step`` under ``torch.compile(mode=mode)``, cached per function and mode."""
    check_mode(mode)
    if (step, mode) not in _COMPILED:
        # RGB balancing back-propagates the rollout once per task (retain_graph=True), which
        # AOTAutograd's donated buffers forbid; they only save memory, so they are turned off.
        torch._functorch.config.donated_buffer = False
        _COMPILED[step, mode] = torch.compile(step, mode=mode, dynamic=False)
    return _COMPILED[step, mode]
