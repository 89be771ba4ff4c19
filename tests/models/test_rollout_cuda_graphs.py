"""The rollout as CUDA graphs (``compile_rollout("reduce-overhead")``, what training uses on GPUs): the
eager values and gradients on every call, through warm-up, recording and replay, and with RGB's two
per-task gradient passes over one retained graph, with CUDA graph trees' own lookups of recorded
tensors and with aime's reordered ones (what training's first two steps use). Runs only where CUDA is
(the GPU machine)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import moving_squares

from aime.models import WorldModel
from aime.models.common import episode_resets
from aime.models.cudagraph_lookups import reordered_cudagraph_lookups

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


@pytest.mark.parametrize("lookups", ["torch", "reordered"])
def test_cuda_graph_rollouts_repeat_the_eager_values_and_per_task_gradients(tiny_cfg, lookups):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg).cuda().eval()  # eval: the codebook and spectral norms stay put
    params = [p for p in model.parameters() if p.requires_grad]
    batch = {k: v.cuda() for k, v in moving_squares(tiny_cfg, batch=2, steps=5).items()}
    frames = batch["obs"].float() / 127.5 - 1.0
    reset = episode_resets(batch["is_first"])

    def rollout_and_task_grads() -> tuple[dict[str, torch.Tensor], list[torch.Tensor | None]]:
        context = model.perception.context(frames, reset) if model.perception is not None else None
        roll = model._rollout(frames, batch["action"], reset, context, sample=False)  # posterior means
        tasks = [roll.h.square().sum(), roll.z.sum() + roll.fused.sum() + roll.state_mean.sum()]
        grads: list[torch.Tensor | None] = []
        for i, task in enumerate(tasks):  # as RGB does: one backward per task over the retained graph
            grads += torch.autograd.grad(task, params, retain_graph=i < len(tasks) - 1, allow_unused=True)
        # Graph outputs live in memory the next replay overwrites: copy them out.
        acts = {k: v.detach().clone() for k, v in roll.activations().items()}
        return acts, [None if g is None else g.clone() for g in grads]

    eager, eager_grads = rollout_and_task_grads()
    assert sum(g is not None for g in eager_grads) > 20
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model.compile_rollout("reduce-overhead")
    try:
        with reordered_cudagraph_lookups(lookups == "reordered"):
            for _call in range(3):  # warm-up, recording, replay
                compiled, compiled_grads = rollout_and_task_grads()
                for name in eager:
                    torch.testing.assert_close(compiled[name], eager[name], rtol=1e-3, atol=1e-4)
                for g, g_eager in zip(compiled_grads, eager_grads, strict=True):
                    assert (g is None) == (g_eager is None)
                    if g is not None:
                        torch.testing.assert_close(g, g_eager, rtol=1e-3, atol=1e-3)
    finally:
        model.compile_rollout(None)
    # Inductor falls back to plain launches, silently, where it cannot record a graph.
    assert torch._dynamo.utils.counters["inductor"]["cudagraph_skips"] == 0


def test_the_per_frame_step_compiles_once_under_bf16_autocast(tiny_cfg):
    """Every frame's state has the initial state's dtype, so the posterior's step is one graph for all
    frames under the trainer's bf16 autocast (the LSTM cells return bf16 there; an fp32 first state
    and bf16 later ones compiled it twice)."""
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg).cuda().eval()
    batch = {k: v.cuda() for k, v in moving_squares(tiny_cfg, batch=2, steps=5).items()}
    frames = batch["obs"].float() / 127.5 - 1.0
    reset = episode_resets(batch["is_first"])
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model.compile_rollout("default")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            context = model.perception.context(frames, reset) if model.perception is not None else None
            roll = model._rollout(frames, batch["action"], reset, context, sample=False)
    finally:
        model.compile_rollout(None)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert roll.h.dtype == torch.float32 and torch.isfinite(roll.h).all()
