"""RGB, rotation-based gradient balancing: per-task unit gradients rotated toward an EMA consensus.

For task i with unit gradient u_i and consensus direction d at angle phi_i, the rotation angle
theta_i minimises

    (1 - p) * (1 - cos(phi_i - theta_i))  +  p * (1 - cos(theta_i))
      conflict: distance left to d           proximity: distance moved from u_i

with p = ``proximity``, which gives tan(theta_i) = (1 - p) sin(phi_i) / (p + (1 - p) cos(phi_i)):
p = 1 keeps every gradient, p -> 0 collapses them onto d, p = 0.5 rotates halfway. Tasks far
from the consensus (conflicting ones) rotate the most. The update is the mean of the rotated unit
vectors, scaled by the mean task-gradient norm (or left unit length).

All of this is a pure function of the (already rank-averaged) task gradients and the consensus, so
every data-parallel rank that starts from the same consensus computes the same update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-12


@dataclass
class RGBResult:
    update: Tensor  # (P,) the balanced gradient
    consensus: Tensor  # (P,) unit vector, the EMA state for the next step
    cos_to_consensus: Tensor  # (n,) before rotation
    rotation: Tensor  # (n,) theta_i in radians
    active: Tensor  # (n,) bool: tasks with a non-zero gradient


def rgb_combine(
    grads: Tensor, consensus: Tensor | None, *, decay: float, proximity: float, scale: str = "mean_norm"
) -> RGBResult:
    """grads (n, P) per-task flat gradients -> the balanced update and the new consensus."""
    assert grads.dim() == 2, ("grads must be (n_tasks, n_params)", tuple(grads.shape))
    norms = grads.norm(dim=1)  # (n,)
    active = norms > _EPS
    if not bool(active.any()):
        zeros = torch.zeros(grads.shape[0], dtype=grads.dtype, device=grads.device)
        unit = consensus if consensus is not None else torch.zeros_like(grads[0])
        return RGBResult(torch.zeros_like(grads[0]), unit, zeros, zeros, active)
    units = grads[active] / norms[active, None]  # (m, P)
    step_direction = F.normalize(units.mean(0), dim=0)
    if consensus is None:
        consensus = step_direction
    else:
        consensus = F.normalize(decay * consensus + (1 - decay) * step_direction, dim=0)

    cos = (units @ consensus).clamp(-1.0, 1.0)  # (m,)
    phi = torch.acos(cos)
    theta = torch.atan2((1 - proximity) * torch.sin(phi), proximity + (1 - proximity) * cos)
    toward = consensus - cos[:, None] * units  # the part of d orthogonal to u_i
    toward_norm = toward.norm(dim=1, keepdim=True)
    # Parallel or anti-parallel to d: no unique rotation plane, so the gradient stays as it is.
    can_rotate = toward_norm.squeeze(1) > 1e-6
    e = toward / toward_norm.clamp_min(1e-6)
    rotated = torch.where(
        can_rotate[:, None], torch.cos(theta)[:, None] * units + torch.sin(theta)[:, None] * e, units
    )
    update = rotated.mean(0)
    if scale == "mean_norm":
        update = update * norms[active].mean()

    full_cos = torch.zeros_like(norms).masked_scatter(active, cos)
    full_theta = torch.zeros_like(norms).masked_scatter(active, torch.where(can_rotate, theta, 0.0))
    return RGBResult(
        update=update, consensus=consensus, cos_to_consensus=full_cos, rotation=full_theta, active=active
    )
