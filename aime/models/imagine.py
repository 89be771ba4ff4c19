"""Imagination: observe context frames with the posterior, then roll the prior forward under given actions.

Actions follow the storage convention: ``context_action[:, -1]`` is taken after the last context
frame, so it leads into imagined frame 0, and ``future_action[:, k]`` is taken after imagined frame
k (leading into frame k + 1). A data window split at Tc therefore reads
``imagine(obs[:, :Tc], action[:, :Tc], action[:, Tc:Tc+H])`` and predicts ``obs[:, Tc:Tc+H]``.

Each imagined step decodes a frame from (z_t, h_{t-1}) exactly as training does, computes c_t by
running perception over the frames so far (the decoded ones included; each frame tokenized once),
and takes the attention map from the attention prior, since there is no real frame to attend to.
``dream`` is that loop alone, from any posterior state: imagination and the open-loop training loss
(``overshoot.py``) share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aime.models.attention.maps import uniform_slot_maps
from aime.models.common import evaluating
from aime.models.dynamics import State
from aime.models.rollout_compile import compiled

if TYPE_CHECKING:
    from aime.models.world_model import WorldModel


@dataclass
class DreamStart:
    """Where an open-loop rollout starts: the posterior's state after its last observed frame."""

    state: State  # (h, c), each (L, B, H): the LSTM after the last observed step
    frames: Tensor  # (B, Tc, 3, S, S) in [-1, 1]: the observed frames perception and the decoder see
    reset: Tensor  # (B, Tc) bool: episode starts among them, the first forced on
    context: Tensor  # (B, C) c of the last observed frame (C = 0 without perception)
    z: Tensor  # (B, Z) z of the last observed frame
    action: Tensor  # (B, A) the action taken after the last observed frame
    slot_maps: Tensor | None  # (B, K, N) the last attention slot maps, or None


def imagine(
    model: WorldModel,
    context_obs: Tensor,
    context_action: Tensor,
    future_action: Tensor,
    *,
    temperature: float = 1.0,
) -> Tensor:
    """context_obs uint8 (B, Tc, 3, S, S), context_action (B, Tc, A), future_action (B, H, A).

    Returns frames (B, H, 3, S, S) in [0, 1].
    """
    B, Tc = context_obs.shape[:2]
    model.validate(
        context_obs, context_action, torch.zeros(B, Tc, dtype=torch.bool, device=context_obs.device)
    )
    if (
        future_action.dim() != 3
        or future_action.shape[0] != B
        or future_action.shape[2] != model.cfg.action_dim
    ):
        raise ValueError(
            f"future_action: expected floating [{B}, H, {model.cfg.action_dim}], "
            f"got {list(future_action.shape)}"
        )
    with evaluating(model):  # no codebook EMA or spectral-norm power iterations from imagination
        start = _observe_context(model, context_obs, context_action)
        params = dream(model, start, future_action, temperature)  # (B, H, P, S, S)
        mean = model.likelihood.mean(params.flatten(0, 1)).view(B, -1, *context_obs.shape[2:])
        return (mean + 1.0) / 2.0  # (B, H, 3, S, S)


def _observe_context(model: WorldModel, context_obs: Tensor, context_action: Tensor) -> DreamStart:
    B, Tc = context_obs.shape[:2]
    frames = context_obs.float() / 127.5 - 1.0  # (B, Tc, 3, S, S)
    reset = torch.zeros(B, Tc, dtype=torch.bool, device=frames.device)
    reset[:, 0] = True
    context = model.perception.context(frames, reset) if model.perception is not None else None
    roll = model._rollout(frames, context_action, reset, context, sample=True)
    return DreamStart(
        state=roll.final_state,
        frames=frames,
        reset=reset,
        context=roll.context[:, -1],
        z=roll.z[:, -1],
        action=context_action[:, -1],
        slot_maps=roll.slot_maps[:, -1] if roll.slot_maps is not None else None,
    )


def dream(model: WorldModel, start: DreamStart, future_action: Tensor, temperature: float) -> Tensor:
    """Roll the prior H steps from ``start`` on its own frames; future_action (B, H, A).

    Returns the decoder's likelihood params (B, H, P, S, S) of each imagined frame; the frame fed back
    to the decoder and to perception is the likelihood's mean. Differentiable (the open-loop loss
    trains through it), except c_t: perception trains on real frames only, so it runs in eval mode
    without gradients here (no codebook update from imagined frames). Each step is two functions of
    tensors, compiled with the posterior's step when ``model.rollout_compile`` is set (training on a
    GPU): the loop is launch-bound like the posterior's. Perception runs eagerly between them (its
    window grows each step, so its shapes are not static).
    """
    B, Hn = future_action.shape[:2]
    perceiving = _Perceiving(model, start.frames, start.reset) if model.perception is not None else None
    keep = _keep(model)  # past frames the next step needs
    mode = model.rollout_compile
    predict = compiled(dream_predict, mode) if mode else dream_predict
    advance = compiled(dream_advance, mode) if mode else dream_advance
    slot_maps = start.slot_maps
    if model.attention is not None and slot_maps is None:  # attention but no context maps: uniform
        slot_maps = uniform_slot_maps(B, model.attention.slots, model.attention.map_size**2, like=start.z)
    state, frames = start.state, start.frames
    c_prev, z_prev, a_prev = start.context.contiguous(), start.z.contiguous(), start.action.contiguous()
    # A compiled step guards on its inputs' strides and requires_grad flags: the inputs are contiguous,
    # and the first step's real frame and the later steps' perception c (neither has a gradient path)
    # carry the flag the other steps' do, so one graph serves all H steps instead of two.
    imagined_grad = start.z.requires_grad  # the imagined frames carry gradients (training) or not
    context_grad = start.context.requires_grad
    out = []
    for k in range(Hn):
        previous = frames[:, -1].contiguous() if k else _flagged(frames[:, -1], imagined_grad)
        h_prev, z, params, frame = predict(model, state, c_prev, a_prev, previous, temperature)
        out.append(params)
        if k + 1 == Hn:  # what follows only prepares a frame nobody asked for
            break
        frames = torch.cat([frames[:, -keep:], frame.unsqueeze(1)], dim=1)  # the recent past
        c = c_prev[:, :0] if perceiving is None else _flagged(perceiving.add(frames), context_grad)
        a_t = future_action[:, k].contiguous()
        state, slot_maps = advance(model, state, h_prev, z_prev, z, c, slot_maps, a_t, temperature)
        c_prev, z_prev, a_prev = c, z, a_t
    return torch.stack(out, dim=1)  # (B, H, P, S, S)


def dream_predict(
    model: WorldModel, state: State, c_prev: Tensor, a_prev: Tensor, previous: Tensor, temperature: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One imagined frame: z_t from the prior, then the decoder. state (L, B, H) each, c_prev (B, C),
    a_prev (B, A), previous frame (B, 3, S, S) in [-1, 1] -> h_{t-1} (B, H), z_t (B, Z), likelihood
    params (B, P, S, S), the frame (their mean, (B, 3, S, S))."""
    h_prev = model.dynamics.top(state)
    stats = model.prior(torch.cat([h_prev, c_prev, a_prev], dim=-1))
    z = model.prior.sample(stats, temperature)  # (B, Z)
    params = model.decode(z.unsqueeze(1), h_prev.unsqueeze(1), previous.unsqueeze(1))[:, 0]
    return h_prev, z, params, model.likelihood.mean(params)


def dream_advance(
    model: WorldModel,
    state: State,
    h_prev: Tensor,
    z_prev: Tensor,
    z: Tensor,
    c: Tensor,
    slot_maps: Tensor | None,
    action: Tensor,
    temperature: float,
) -> tuple[State, Tensor | None]:
    """The state after an imagined frame: the attention prior's maps and A_t, then the LSTM step.
    h_prev (B, H), z_prev and z (B, Z), c (B, C), slot_maps (B, K, N) or None, action (B, A)."""
    attention_state = z[:, :0]
    if model.attention is not None and slot_maps is not None:
        cond = torch.cat([h_prev, z_prev], dim=-1).unsqueeze(1)
        slot_maps_seq, fused = model.attention.prior(slot_maps.unsqueeze(1), cond)
        slot_maps = slot_maps_seq[:, 0]
        attention_state, _, _ = model.attention.state(fused[:, 0], temperature=temperature)
    state = model.dynamics.step(torch.cat([z, c, attention_state, action], dim=-1), state)
    return state, slot_maps


def _flagged(tensor: Tensor, requires_grad: bool) -> Tensor:
    """``tensor`` (no gradient path into the model) as a contiguous leaf with the given flag: the
    model's parameters get the same gradients either way."""
    leaf = tensor.detach().contiguous()
    return leaf.requires_grad_() if requires_grad else leaf


def _keep(model: WorldModel) -> int:
    """Frames of the past the next step needs: the decoder's previous frame, perception's reach."""
    return model.perception.tokenizer.receptive_frames if model.perception is not None else 1


class _Perceiving:
    """c_t for each new frame without tokenizing the past again: a frame's tokens depend only on the
    last ``receptive_frames`` frames (causal convolutions), so each frame is tokenized once and its
    ids kept. Beyond ``max_frames`` the Perceiver's window slides (the oldest frames drop out); the
    frames at its start keep the tokens their real predecessors gave them (until 2026-12-04 the window
    was tokenized again with nothing before it, so imagination past max_frames differs slightly).
    Perception learns from real frames only: eval mode, no gradients, no codebook update."""

    def __init__(self, model: WorldModel, frames: Tensor, reset: Tensor):
        assert model.perception is not None
        self.perception, self.limit = model.perception, model.cfg.perception.max_frames
        with _quiet(self.perception):
            self.ids = self.perception.tokens(frames.detach())  # (B, Tc, h, w)
        self.reset = reset

    def add(self, frames: Tensor) -> Tensor:
        """frames (B, t, 3, S, S) ending with the new one -> c of the new frame (B, C)."""
        reach = self.perception.tokenizer.receptive_frames
        with _quiet(self.perception):
            new = self.perception.tokens(frames[:, -reach:].detach())[:, -1:]
            self.ids = torch.cat([self.ids, new], dim=1)[:, -self.limit :]
            self.reset = torch.cat([self.reset, torch.zeros_like(self.reset[:, :1])], dim=1)[:, -self.limit :]
            reset = self.reset.clone()
            reset[:, 0] = True
            return self.perception.bottleneck(self.ids, reset)[:, -1]


@contextmanager
def _quiet(module: torch.nn.Module) -> Iterator[None]:
    with torch.no_grad(), evaluating(module):
        yield
