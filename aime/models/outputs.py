"""What the world model returns: per-step tensors of one forward pass, and the losses computed from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from aime.models.perception.stream import PerceptionOutput
from aime.models.prior.dpgmm import PriorStats


@dataclass
class WorldModelOutput:
    reconstruction: Tensor  # (B, T, 3, H, W) float in [0, 1]: the decoder's mean frame
    recon_params: Tensor  # (B, T, P, H, W) parameters of p(o_t | z_t, h_{t-1})
    posterior_mean: Tensor  # (B, T, Z)
    posterior_std: Tensor  # (B, T, Z)
    z: Tensor  # (B, T, Z) the posterior sample that drove the LSTM
    prior: PriorStats  # fields (B, T, ...)
    reset: Tensor  # (B, T) bool: is_first with t=0 forced on
    context: Tensor | None = None  # (B, T, C) c_t; None without perception
    perception: PerceptionOutput | None = None
    attention_map: Tensor | None = None  # (B, T, M, M) posterior fused map; None without attention
    attention_prior_map: Tensor | None = None  # (B, T, M, M)
    slot_maps: Tensor | None = None  # (B, T, K, M, M)
    attention_state_mean: Tensor | None = None  # (B, T, S)
    attention_state_std: Tensor | None = None  # (B, T, S)
    # Named per-step features for probing: z, h, h_prev, embed, and c / attention_state when enabled.
    activations: dict[str, Tensor] = field(default_factory=dict)
    # With loss.prior_recon > 0: (B, T, P, H, W) params of o_t decoded from the prior's z_t (the
    # heaviest component's mean, as imagination decodes): the one-step prediction.
    prior_recon_params: Tensor | None = None
    # With loss.overshoot > 0, in training mode: the open-loop predictions from a few points of each
    # window (overshoot.py).
    open_loop: OpenLoopPrediction | None = None


@dataclass
class OpenLoopPrediction:
    """Frames the prior imagined inside training (``loss.overshoot``) and the real frames they predict."""

    params: Tensor  # (N, K, P, H, W) likelihood params of K imagined frames from N starts
    target: Tensor  # (N, K, 3, H, W) the real frames in [-1, 1]
    valid: Tensor  # (N, K) bool: False from a new episode on


@dataclass
class LossOutput:
    total: Tensor  # scalar: the weighted sum of every task (what "sum" balancing back-propagates)
    tasks: dict[str, Tensor]  # "elbo", "perception", "attention", "adversarial": weighted scalars
    components: dict[str, Tensor]  # every unweighted term by name, "elbo/recon", "attention/kl", ...
    metrics: dict[str, Tensor]  # detached diagnostics that are not losses
