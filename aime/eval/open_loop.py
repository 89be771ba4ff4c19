"""Open-loop prediction and the ELBO on one batch of evaluation windows.

A window of C context + H horizon frames is scored three ways, all on the same frames:

    model     imagine(obs[:, :C], action[:, :C], action[:, C:])   -> (B, H, 3, S, S), vs obs[:, C:]
    baseline  obs[:, C - 1] repeated H times (copy the last frame)  -> (B, H, 3, S, S), vs obs[:, C:]
    elbo      model.losses(model(obs, action, is_first), batch)     over all C + H frames

Per-step metrics keep the horizon axis, (B, H), so the driver can average them per step over windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from aime.eval.metrics import frame_metrics
from aime.models.common import evaluating
from aime.models.world_model import WorldModel

PREDICTORS = ("model", "baseline")
METRICS = ("mse", "psnr", "ssim")


@dataclass(frozen=True)
class OpenLoopConfig:
    context: int = 5  # C: frames the model observes before predicting
    horizon: int = 10  # H: frames predicted open loop under the true actions
    temperature: float = 0.0  # prior sampling temperature; 0 follows the heaviest component's mean
    # The model's prediction is the mean frame of this many imagined futures (at ``temperature``):
    # under squared error the best point prediction is the expected frame, not one sample.
    samples: int = 1

    def __post_init__(self) -> None:
        if self.context < 1 or self.horizon < 1:
            raise ValueError(f"context and horizon must be >= 1, got {self.context} and {self.horizon}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def length(self) -> int:
        return self.context + self.horizon


@torch.no_grad()
def open_loop_batch(model: WorldModel, batch: Mapping[str, Tensor], cfg: OpenLoopConfig) -> dict[str, Tensor]:
    """{"model/psnr": (B, H), ..., "baseline/ssim": (B, H), "loss/<term>": (B,)} for one batch.

    batch: obs uint8 (B, C + H, 3, S, S), action (B, C + H, A), is_first bool (B, C + H), on the
    model's device. Loss terms are batch means, repeated per window so that a window-weighted mean
    over batches is the mean over all windows.
    """
    obs, action, is_first = batch["obs"], batch["action"], batch["is_first"]
    B, T = obs.shape[:2]
    C, H = cfg.context, cfg.horizon
    assert T == C + H, ("window length != context + horizon", T, C, H)
    # A window starting mid-episode but containing a later episode start cannot happen (windows never
    # cross files); an is_first inside the horizon would make every predictor's job meaningless.
    assert not is_first[:, C:].any(), "an episode starts inside the predicted horizon"

    target = obs[:, C:].float() / 255.0  # (B, H, 3, S, S)
    predicted = mean_prediction(model, obs[:, :C], action[:, :C], action[:, C:], cfg)  # (B, H, 3, S, S)
    copied = (obs[:, C - 1 : C].float() / 255.0).expand_as(target)  # (B, H, 3, S, S)
    out: dict[str, Tensor] = {}
    for name, frames in (("model", predicted), ("baseline", copied)):
        for metric, value in frame_metrics(frames, target).items():
            out[f"{name}/{metric}"] = value  # (B, H)
    for name, value in loss_terms(model, batch).items():
        out[f"loss/{name}"] = value.expand(B)  # (B,)
    return out


@torch.no_grad()
def mean_prediction(
    model: WorldModel, context_obs: Tensor, context_action: Tensor, future_action: Tensor, cfg: OpenLoopConfig
) -> Tensor:
    """The mean over ``cfg.samples`` imagined futures, each window's futures side by side in one batch.
    context_obs (B, C, 3, S, S) uint8, actions (B, C, A) / (B, H, A) -> frames (B, H, 3, S, S)."""
    n = cfg.samples
    if n == 1:
        return model.imagine(context_obs, context_action, future_action, temperature=cfg.temperature)
    B = context_obs.shape[0]
    futures = model.imagine(
        context_obs.repeat_interleave(n, 0),
        context_action.repeat_interleave(n, 0),
        future_action.repeat_interleave(n, 0),
        temperature=cfg.temperature,
    )  # (B * n, H, 3, S, S)
    return futures.view(B, n, *futures.shape[1:]).mean(1)


@torch.no_grad()
def loss_terms(model: WorldModel, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Every loss component, task and diagnostic of ``model.losses`` on the batch (named as in
    training: "elbo/recon", "task/elbo", "perception/token_ce", ...), and "elbo/neg_elbo".

    ``elbo/neg_elbo`` is the unweighted negative ELBO per frame in nats: reconstruction plus the three KL
    terms, without the training weights or free nats, so checkpoints trained with different weights
    compare on one scale.
    """
    with evaluating(model):  # no codebook EMA or spectral-norm updates from evaluation
        output = model(batch["obs"], batch["action"], batch["is_first"])
        losses = model.losses(output, batch)
    terms = {"total": losses.total}
    terms |= {f"task/{k}": v for k, v in losses.tasks.items()}
    terms |= losses.components | losses.metrics
    c = losses.components
    terms["elbo/neg_elbo"] = c["elbo/recon"] + c["elbo/kl_z"] + c["elbo/kl_sticks"] + c["elbo/kl_alpha"]
    return {k: v.detach().float().reshape(()) for k, v in terms.items()}
