"""The posterior rollout: the only sequential part of the model, one LSTM step per frame.

Everything that needs only frames (encoder features, feature pyramid, c_t) is computed for the
whole sequence before the loop, and everything that needs only the loop's outputs (prior, decoder,
attention prior) after it, so the loop holds just slot attention, q(z_t) and the LSTM cell.

The loop is launch-bound on a GPU: each frame is a few hundred small kernels. ``frame_step`` is the
loop's body as one function of tensors so that ``torch.compile`` can fuse it (``WorldModel.
compile_rollout``, ``rollout_compile.py``); it is compiled once and reused for every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aime.models import noise
from aime.models.dynamics import State
from aime.models.rollout_compile import CUDA_GRAPH_MODES, compiled

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
    kept_states: list[State] = field(default_factory=list)  # the state after each step of ``keep_states``

    def activations(self) -> dict[str, Tensor]:
        acts = {"z": self.z, "h": self.h, "h_prev": self.h_prev, "embed": self.embed}
        if self.context.shape[-1]:
            acts["c"] = self.context
        if self.state_sample is not None:
            acts["attention_state"] = self.state_sample
        return acts


AttentionStep = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]  # slot maps, fused map, A_t, its mean, std


def frame_step(
    model: WorldModel,
    state: State,
    embed: Tensor,
    keys: Tensor | None,
    values: Tensor | None,
    context: Tensor,
    action: Tensor,
    reset: Tensor,
    sample: bool,
) -> tuple[State, Tensor, Tensor, Tensor, Tensor, AttentionStep | None]:
    """One frame: reset, attention posterior, q(z_t), LSTM step.

    embed (B, E), keys/values (B, N, D) or None, context (B, C), action (B, A), reset (B,) bool ->
    (state after the step, h_{t-1} (B, H), q mean, q std, z_t (B, Z), attention outputs or None).
    """
    state = model.dynamics.reset(state, reset)
    top = model.dynamics.top(state)  # (B, H) h_{t-1}
    attention_state = embed.new_zeros(embed.shape[0], 0)
    attention: AttentionStep | None = None
    if model.attention is not None and keys is not None and values is not None:
        slots = model.attention.posterior.attend(keys, values, torch.cat([top, context], dim=-1))
        attention_state, mean_a, std_a = model.attention.state(
            slots.fused, temperature=1.0 if sample else 0.0
        )
        attention = (slots.slot_maps, slots.fused, attention_state, mean_a, std_a)
    mean, std = model.posterior(torch.cat([embed, top, context], dim=-1))
    z = mean + std * noise.randn_like(std) if sample else mean
    state = model.dynamics.step(torch.cat([z, context, attention_state, action], dim=-1), state)
    return state, top, mean, std, z, attention


def observe(
    model: WorldModel,
    *,
    embed: Tensor,
    features: Tensor | None,
    context: Tensor,
    action: Tensor,
    reset: Tensor,
    sample: bool,
    keep_states: tuple[int, ...] = (),
) -> Rollout:
    """Run q(z_t), the attention posterior and the LSTM over T steps.

    embed (B, T, E), features (B, T, N, F) or None, context (B, T, C), action (B, T, A), reset (B, T).
    With ``sample=False`` z_t and A_t are their means (deterministic features). The full LSTM state
    after each step in ``keep_states`` is kept (``Rollout.kept_states``), for open-loop rollouts.
    """
    B, T = embed.shape[:2]
    keys = values = None
    if model.attention is not None and features is not None:
        keys, values = model.attention.posterior.keys_values(features)  # (B, T, N, D) each
    step = compiled(frame_step, model.rollout_compile) if model.rollout_compile else frame_step
    if model.rollout_compile in CUDA_GRAPH_MODES:
        # A new iteration: the previous rollout's graph outputs are dead (stacked into copies, their
        # backward done), so CUDA graph trees may reuse their memory without waiting to find out.
        torch.compiler.cudagraph_mark_step_begin()
    h0, c0 = model.dynamics.initial_state(B)
    state = h0.contiguous(), c0.contiguous()  # the layout of every later state: one compiled graph for all
    h_prev, h, q_mean, q_std, zs = [], [], [], [], []
    attention: list[AttentionStep] = []
    kept: list[State] = []
    for t in range(T):
        state, top, mean, std, z, attention_t = step(
            model,
            state,
            embed[:, t],
            keys[:, t] if keys is not None else None,
            values[:, t] if values is not None else None,
            context[:, t],
            action[:, t],
            reset[:, t],
            sample,
        )
        h_prev.append(top)
        h.append(model.dynamics.top(state))
        q_mean.append(mean)
        q_std.append(std)
        zs.append(z)
        if attention_t is not None:
            attention.append(attention_t)
        if t in keep_states:  # under CUDA graphs the graph's memory is reused next step: copy
            kept.append((state[0].clone(), state[1].clone()) if model.rollout_compile else state)
    maps, fused, a_sample, a_mean, a_std = (
        (torch.stack(xs, dim=1) for xs in zip(*attention, strict=True)) if attention else [None] * 5
    )
    return Rollout(
        h_prev=torch.stack(h_prev, 1),
        h=torch.stack(h, 1),
        q_mean=torch.stack(q_mean, 1),
        q_std=torch.stack(q_std, 1),
        z=torch.stack(zs, 1),
        embed=embed,
        context=context,
        # under CUDA graphs the last step's outputs live in the graph's memory pool: hand out copies
        final_state=(state[0].clone(), state[1].clone()) if model.rollout_compile else state,
        slot_maps=maps,
        fused=fused,
        state_sample=a_sample,
        state_mean=a_mean,
        state_std=a_std,
        kept_states=kept,
    )
