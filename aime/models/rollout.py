"""The posterior rollout: the only sequential part of the model, one LSTM step per frame.

Everything that needs only frames (encoder features, feature pyramid, c_t) is computed for the
whole sequence before the loop, and everything that needs only the loop's outputs (prior, decoder,
attention prior) after it, so the loop holds just slot attention, q(z_t) and the LSTM cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aime.models.dynamics import State

if TYPE_CHECKING:
    from aime.models.world_model import WorldModel


@dataclass
class Rollout:
    h_prev: Tensor  # (B, T, H) the state each step starts from (after any reset)
    h: Tensor  # (B, T, H) after the step
    q_mean: Tensor  # (B, T, Z)
    q_std: Tensor  # (B, T, Z)
    z: Tensor  # (B, T, Z)
    embed: Tensor  # (B, T, E)
    context: Tensor  # (B, T, C), C = 0 without perception
    final_state: State
    slot_maps: Tensor | None = None  # (B, T, K, N)
    fused: Tensor | None = None  # (B, T, N)
    state_sample: Tensor | None = None  # (B, T, S) A_t
    state_mean: Tensor | None = None
    state_std: Tensor | None = None

    def activations(self) -> dict[str, Tensor]:
        acts = {"z": self.z, "h": self.h, "h_prev": self.h_prev, "embed": self.embed}
        if self.context.shape[-1]:
            acts["c"] = self.context
        if self.state_sample is not None:
            acts["attention_state"] = self.state_sample
        return acts


def observe(
    model: WorldModel,
    *,
    embed: Tensor,
    features: Tensor | None,
    context: Tensor,
    action: Tensor,
    reset: Tensor,
    sample: bool,
) -> Rollout:
    """Run q(z_t), the attention posterior and the LSTM over T steps.

    embed (B, T, E), features (B, T, N, F) or None, context (B, T, C), action (B, T, A), reset (B, T).
    With ``sample=False`` z_t and A_t are their means (deterministic features).
    """
    B, T = embed.shape[:2]
    state = model.dynamics.initial_state(B)
    h_prev, h, q_mean, q_std, zs = [], [], [], [], []
    maps, fused, a_sample, a_mean, a_std = [], [], [], [], []
    no_state = embed.new_zeros(B, 0)
    for t in range(T):
        state = model.dynamics.reset(state, reset[:, t])
        top = model.dynamics.top(state)  # (B, H) h_{t-1}
        attention_state = no_state
        if model.attention is not None and features is not None:
            slots = model.attention.posterior(features[:, t], torch.cat([top, context[:, t]], dim=-1))
            attention_state, mean_a, std_a = model.attention.state(
                slots.fused, temperature=1.0 if sample else 0.0
            )
            maps.append(slots.slot_maps)
            fused.append(slots.fused)
            a_sample.append(attention_state)
            a_mean.append(mean_a)
            a_std.append(std_a)
        mean, std = model.posterior(torch.cat([embed[:, t], top, context[:, t]], dim=-1))
        z = mean + std * torch.randn_like(std) if sample else mean
        state = model.dynamics.step(
            torch.cat([z, context[:, t], attention_state, action[:, t]], dim=-1), state
        )
        h_prev.append(top)
        h.append(model.dynamics.top(state))
        q_mean.append(mean)
        q_std.append(std)
        zs.append(z)

    def stack(xs: list[Tensor]) -> Tensor | None:
        return torch.stack(xs, dim=1) if xs else None

    return Rollout(
        h_prev=torch.stack(h_prev, 1),
        h=torch.stack(h, 1),
        q_mean=torch.stack(q_mean, 1),
        q_std=torch.stack(q_std, 1),
        z=torch.stack(zs, 1),
        embed=embed,
        context=context,
        final_state=state,
        slot_maps=stack(maps),
        fused=stack(fused),
        state_sample=stack(a_sample),
        state_mean=stack(a_mean),
        state_std=stack(a_std),
    )
