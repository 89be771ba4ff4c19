"""The open-loop training loss (``loss.overshoot``): imagination inside training, scored on real frames.

The one-step loss (``loss.prior_recon``) decodes each frame from the prior given the posterior's
state, so the prior never sees its own errors; at evaluation it rolls forward on them for H steps.
Here, from a few evenly spaced points of each window, the prior imagines ``overshoot_steps`` frames
with ``imagine.dream`` (the loop evaluation runs, at temperature 0, with the last
``overshoot_context`` observed frames before it, as evaluation's context) and the real frames score
them. Gradients flow back through the imagined steps (z, h and the frames the residual decoder
re-reads) into the posterior state they started from. Observation overshooting in the sense of
PlaNet (Hafner et al., 2019), which overshoots in latent space instead.

A new episode inside the predicted steps ends that prediction there (the rest is masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aime.models.config import LossConfig
from aime.models.imagine import DreamStart, dream
from aime.models.outputs import OpenLoopPrediction
from aime.models.rollout import Rollout

if TYPE_CHECKING:
    from aime.models.world_model import WorldModel


def start_steps(loss: LossConfig, T: int) -> tuple[int, ...]:
    """The steps (indices of the last observed frame) predictions start from, for windows of T steps."""
    first, last = loss.overshoot_context - 1, T - loss.overshoot_steps - 1
    if last < first:
        raise ValueError(
            f"model.loss.overshoot needs windows of at least overshoot_context + overshoot_steps = "
            f"{loss.overshoot_context + loss.overshoot_steps} steps, got {T} (train.seq_len)"
        )
    S = loss.overshoot_starts
    return tuple(sorted({round(first + (last - first) * i / max(S - 1, 1)) for i in range(S)}))


def overshoot(
    model: WorldModel, roll: Rollout, frames: Tensor, action: Tensor, reset: Tensor, starts: tuple[int, ...]
) -> OpenLoopPrediction:
    """frames (B, T, 3, S, S) in [-1, 1], action (B, T, A), reset (B, T) bool; ``roll`` kept the
    state after each of ``starts``. Predictions from every start are stacked along the batch: (n*B, ...)."""
    Tc, K = model.cfg.loss.overshoot_context, model.cfg.loss.overshoot_steps
    assert len(roll.kept_states) == len(starts), "the rollout must keep the state at every start"

    def each(pick) -> Tensor:  # one tensor per start, stacked along the batch
        return torch.cat([pick(t) for t in starts], dim=0)

    context_reset = each(lambda t: reset[:, t - Tc + 1 : t + 1]).clone()
    context_reset[:, 0] = True
    start = DreamStart(
        state=(
            torch.cat([s[0] for s in roll.kept_states], dim=1),  # (L, n*B, H)
            torch.cat([s[1] for s in roll.kept_states], dim=1),
        ),
        frames=each(lambda t: frames[:, t - Tc + 1 : t + 1]),
        reset=context_reset,
        context=each(lambda t: roll.context[:, t]),
        z=each(lambda t: roll.z[:, t]),
        action=each(lambda t: action[:, t]),
        slot_maps=each(lambda t: roll.slot_maps[:, t]) if roll.slot_maps is not None else None,
    )
    params = dream(model, start, each(lambda t: action[:, t + 1 : t + 1 + K]), temperature=0.0)
    new_episode = each(lambda t: reset[:, t + 1 : t + 1 + K])  # (n*B, K)
    return OpenLoopPrediction(
        params=params,
        target=each(lambda t: frames[:, t + 1 : t + 1 + K]),
        valid=new_episode.cumsum(dim=1) == 0,
    )
