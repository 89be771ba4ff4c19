"""The imagined steps under torch.compile (what the open-loop loss runs in training on GPUs): each of
the two step functions traces as one graph, is compiled once for all imagined frames, and gives the
eager loss's values and gradients."""

from __future__ import annotations

import pytest
import torch
from model_helpers import moving_squares
from test_overshoot import with_overshoot

from aime.models import WorldModel, noise, rollout_compile
from aime.models.common import episode_resets
from aime.models.imagine import dream_advance, dream_predict
from aime.models.overshoot import overshoot, start_steps


def _open_loop(model: WorldModel, batch: dict[str, torch.Tensor]):
    frames = batch["obs"].float() / 127.5 - 1.0
    reset = episode_resets(batch["is_first"])
    starts = start_steps(model.cfg.loss, frames.shape[1])
    context = model.perception.context(frames, reset) if model.perception is not None else None
    roll = model._rollout(frames, batch["action"], reset, context, sample=False, keep_states=starts)
    return overshoot(model, roll, frames, batch["action"], reset, starts)


def test_each_imagined_step_traces_as_one_graph_without_breaks(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(with_overshoot(tiny_cfg)).eval()
    assert model.attention is not None and model.perception is not None  # both pillars are in the loop
    B, Z, A, S = 3, model.cfg.latent_dim, model.cfg.action_dim, model.cfg.image_size
    state = tuple(s.contiguous() for s in model.dynamics.initial_state(B))
    h_prev = model.dynamics.top(state)
    c, z, a = torch.randn(B, model.context_dim), torch.randn(B, Z), torch.randn(B, A)
    previous = torch.rand(B, 3, S, S) * 2 - 1
    explained = torch._dynamo.explain(dream_predict)(model, state, c, a, previous, 0.0)
    assert explained.graph_break_count == 0, explained.break_reasons
    N = model.attention.map_size**2
    maps = torch.full((B, model.attention.slots, N), 1.0 / N)
    explained = torch._dynamo.explain(dream_advance)(model, state, h_prev, z, z, c, maps, a, 0.0)
    assert explained.graph_break_count == 0, explained.break_reasons


def _fixed_uniform(x: torch.Tensor) -> torch.Tensor:
    """A fixed spread of values in (0, 1) shaped like x: the same 'draws' in every call and graph."""
    index = torch.arange(x.numel(), dtype=torch.float64, device=x.device).view_as(x)
    return (0.05 + 0.9 * torch.frac(index * 0.6180339887)).to(x.dtype)


def _fixed_normal(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(torch.arange(x.numel(), dtype=x.dtype, device=x.device).view_as(x))


def _through_aot_autograd(monkeypatch) -> None:
    """``torch.compile`` as the model calls it, but with AOTAutograd's graphs run eagerly instead of
    Inductor's generated code. What aime controls is all still compiled: Dynamo's tracing, its guards
    (the graph count below) and AOTAutograd's forward and backward. Inductor's C++ kernels are torch's:
    on this CPU it compiles 99 of them for this loss, about 75 s on 2 cores; ``test_rollout_compile.py``
    runs Inductor here and the CUDA-only tests run it on a GPU."""
    compile_with_inductor = torch.compile

    def compile_through_aot_autograd(step, mode=None, **options):
        return compile_with_inductor(step, backend="aot_eager", **options)

    monkeypatch.setattr(torch, "compile", compile_through_aot_autograd)
    monkeypatch.setattr(rollout_compile, "_COMPILED", {})  # no step an earlier test compiled


def test_the_compiled_open_loop_loss_gives_the_eager_values_and_gradients(tiny_cfg, monkeypatch):
    """The model's draws (the prior's sticks, among others) are fixed values here: a compiled graph
    may order its random draws differently from eager code (torch 2.11 on the H200 machine did, 2.13
    here did not), and that would compare draws, not the math."""
    monkeypatch.setattr(noise, "rand_like", _fixed_uniform)
    monkeypatch.setattr(noise, "randn_like", _fixed_normal)
    _through_aot_autograd(monkeypatch)
    torch.manual_seed(0)
    model = WorldModel(with_overshoot(tiny_cfg)).eval()  # train mode moves the codebook between calls
    batch = moving_squares(model.cfg, batch=2, steps=8)
    params = [p for p in model.parameters() if p.requires_grad]

    def prediction_and_grads() -> tuple[torch.Tensor, tuple[torch.Tensor | None, ...]]:
        predicted = _open_loop(model, batch).params  # (n*B, K, P, S, S)
        grads = torch.autograd.grad(predicted.square().mean(), params, allow_unused=True)
        return predicted.detach(), grads

    eager, eager_grads = prediction_and_grads()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model.compile_rollout("default")
    try:
        compiled, compiled_grads = prediction_and_grads()
        compiled_again, _ = prediction_and_grads()
    finally:
        model.compile_rollout(None)
    # The posterior's step, dream_predict and dream_advance, each compiled once for every frame and
    # call: the first imagined step's inputs carry the later steps' requires_grad flags (a real
    # previous frame, the posterior's c), which a compiled step guards on; else dream_predict would
    # compile twice, a second graph recorded and kept.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 3
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled_again, eager, rtol=1e-4, atol=1e-5)
    assert sum(g is not None for g in eager_grads) > 20  # the imagined steps reach most of the model
    for g, g_eager in zip(compiled_grads, eager_grads, strict=True):
        assert (g is None) == (g_eager is None)
        if g is not None:
            torch.testing.assert_close(g, g_eager, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_imagined_steps_train_through_warm_up_recording_and_replay(tiny_cfg):
    """What training on a GPU runs (``reduce-overhead``): three steps of the open-loop loss, the third
    replaying the graphs, each with finite values and the eager run's set of gradients. (Values are
    not compared: the prior draws its sticks from the graphs' own random stream.)"""
    torch.manual_seed(0)
    model = WorldModel(with_overshoot(tiny_cfg)).cuda()  # training mode, as the trainer runs it
    batch = {k: v.cuda() for k, v in moving_squares(model.cfg, batch=2, steps=8).items()}
    params = [p for p in model.parameters() if p.requires_grad]
    eager = torch.autograd.grad(_open_loop(model, batch).params.square().mean(), params, allow_unused=True)
    torch._dynamo.reset()
    model.compile_rollout("reduce-overhead")
    try:
        for _ in range(3):
            predicted = _open_loop(model, batch).params
            grads = torch.autograd.grad(predicted.square().mean(), params, allow_unused=True)
            assert torch.isfinite(predicted).all()
            assert [g is None for g in grads] == [g is None for g in eager]
            assert all(torch.isfinite(g).all() for g in grads if g is not None)
    finally:
        model.compile_rollout(None)
