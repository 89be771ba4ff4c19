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
    """grads (n, P) per-task flat gradients -> the balanced update and the new consensus.

    Tasks with a zero gradient are masked out rather than indexed out, and "no task active" is a
    ``torch.where`` rather than a branch: nothing here waits for the device, so on a GPU the whole
    combination queues behind the per-task backward passes (a host sync there idled the GPU while
    the rest of the step was launched).
    """
    assert grads.dim() == 2, ("grads must be (n_tasks, n_params)", tuple(grads.shape))
    norms = grads.norm(dim=1)  # (n,)
    active = norms > _EPS  # (n,)
    count = active.sum().to(grads.dtype)  # m, the number of active tasks
    any_active = count > 0
    count = count.clamp_min(1.0)
    units = torch.where(active[:, None], grads / norms.clamp_min(_EPS)[:, None], 0.0)  # (n, P)
    step_direction = F.normalize(units.sum(0) / count, dim=0)
    if consensus is None:
        previous, consensus = torch.zeros_like(step_direction), step_direction
    else:
        previous = consensus
        consensus = F.normalize(decay * consensus + (1 - decay) * step_direction, dim=0)
    consensus = torch.where(any_active, consensus, previous)  # no active task: the state stays

    cos = (units @ consensus).clamp(-1.0, 1.0)  # (n,); 0 for inactive tasks
    phi = torch.acos(cos)
    theta = torch.atan2((1 - proximity) * torch.sin(phi), proximity + (1 - proximity) * cos)
    toward = consensus - cos[:, None] * units  # the part of d orthogonal to u_i
    toward_norm = toward.norm(dim=1, keepdim=True)
    # Parallel or anti-parallel to d: no unique rotation plane, so the gradient stays as it is.
    can_rotate = (toward_norm.squeeze(1) > 1e-6) & active
    e = toward / toward_norm.clamp_min(1e-6)
    rotated = torch.where(
        can_rotate[:, None], torch.cos(theta)[:, None] * units + torch.sin(theta)[:, None] * e, units
    )  # inactive rows stay 0
    update = rotated.sum(0) / count
    if scale == "mean_norm":
        update = update * torch.where(active, norms, 0.0).sum() / count
    return RGBResult(
        update=update,
        consensus=consensus,
        cos_to_consensus=torch.where(active, cos, 0.0),
        rotation=torch.where(can_rotate, theta, 0.0),
        active=active,
    )
