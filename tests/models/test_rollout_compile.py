"""The per-frame rollout step under torch.compile: one graph, the same values and gradients as eager."""

from __future__ import annotations

import pytest
import torch
from model_helpers import moving_squares

from aime.models import WorldModel
from aime.models.common import episode_resets
from aime.models.rollout import frame_step
from aime.models.world_model import eager_rollout


def _frame_inputs(model: WorldModel, batch: dict[str, torch.Tensor]) -> tuple:
    frames = batch["obs"].float() / 127.5 - 1.0
    keys, values = model.attention.posterior.keys_values(model.attention.pyramid(frames))
    B = frames.shape[0]
    context = torch.zeros(B, model.context_dim)
    embed = model.encoder(frames)[:, 0]
    return (model, model.dynamics.initial_state(B), embed, keys[:, 0], values[:, 0], context)


def test_the_frame_step_traces_as_one_graph_without_breaks(tiny_cfg):
    """A graph break (an untraceable module such as nn.LSTM, a host sync) would split the step into
    pieces and give back most of what compiling it buys."""
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    assert model.attention is not None  # the tiny preset has the attention pillar: its loop is traced too
    batch = moving_squares(tiny_cfg, batch=2, steps=2)
    action, reset = batch["action"][:, 0], torch.zeros(2, dtype=torch.bool)
    explained = torch._dynamo.explain(frame_step)(*_frame_inputs(model, batch), action, reset, True)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_the_compiled_rollout_gives_the_eager_values_and_gradients(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg).eval()  # train mode moves the codebook and spectral norms between calls
    batch = moving_squares(tiny_cfg, batch=2, steps=5)
    frames = batch["obs"].float() / 127.5 - 1.0
    reset = episode_resets(batch["is_first"])

    def features_and_grads() -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
        context = model.perception.context(frames, reset) if model.perception is not None else None
        roll = model._rollout(frames, batch["action"], reset, context, sample=False)  # posterior means
        params = [p for p in model.parameters() if p.requires_grad]
        loss = roll.h.square().sum() + roll.z.sum() + roll.fused.sum() + roll.state_mean.sum()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return {k: v.detach() for k, v in roll.activations().items()}, grads

    eager, eager_grads = features_and_grads()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model.compile_rollout("default")
    try:
        compiled, compiled_grads = features_and_grads()
    finally:
        model.compile_rollout(None)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # compiled once, reused per frame
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5)
    assert sum(g is not None for g in eager_grads) > 10  # the rollout reaches most of the model
    for g, g_eager in zip(compiled_grads, eager_grads, strict=True):
        assert (g is None) == (g_eager is None)
        if g is not None:
            torch.testing.assert_close(g, g_eager, rtol=1e-4, atol=1e-4)


def test_eager_rollout_switches_compilation_off_for_its_duration_only(tiny_cfg):
    model = WorldModel(tiny_cfg).compile_rollout("reduce-overhead")
    with pytest.raises(RuntimeError), eager_rollout(model):
        assert model.rollout_compile is None
        raise RuntimeError("an evaluation that fails")
    assert model.rollout_compile == "reduce-overhead"
