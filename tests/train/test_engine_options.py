"""The worker's engine options: bf16 autocast reaches the model's forward inside ``engine(...)``, and
the compiled rollout trains under ZeRO-2.

DeepSpeed's engine switches an outer autocast off inside its forward unless its ``torch_autocast``
section is on; these tests run the worker's own ``build_engine`` / ``train_microbatch`` (one gloo
rank, CPU) and look at the dtype a Linear layer inside the model actually computes in.

DeepSpeed tests for an outer autocast with ``torch.is_autocast_enabled()``, which reads CUDA's flag
only, so on a CPU machine the trap never springs by itself: the test raises CUDA's flag around the
step, which is the state a GPU worker's step is in.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from engine_helpers import tiny_batch

from aime.config import Config, load_config


@pytest.mark.parametrize("bf16", [True, False])
def test_the_models_forward_runs_in_the_configured_precision(gloo_group, bf16):
    from aime.models.balancing.balancer import GradientBalancer
    from aime.train.worker import build_engine, train_microbatch

    cfg = load_config(
        Config,
        "tiny",
        [f"train.bf16={str(bf16).lower()}", "train.batch_size=2", "model.optim.balancing.mode=sum"],
    )
    engine, _ = build_engine(cfg, torch.device("cpu"), 1)
    seen: list[torch.dtype] = []
    linear = next(m for m in engine.module.posterior.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    params = [p for p in engine.module.parameters() if p.requires_grad]
    balancer = GradientBalancer(cfg.model.optim.balancing)
    with cuda_autocast_flag(bf16):
        losses, _ = train_microbatch(engine, balancer, params, tiny_batch(seed=0), bf16=bf16)
    assert seen and set(seen) == {torch.bfloat16 if bf16 else torch.float32}
    assert torch.isfinite(losses.total)
    assert all(p.dtype == torch.float32 for p in engine.module.parameters())  # weights stay fp32


@contextlib.contextmanager
def cuda_autocast_flag(enabled: bool):
    """CUDA's autocast flag set as a GPU worker's bf16 step sets it (it only flips a thread-local flag)."""
    previous = torch.is_autocast_enabled("cuda")
    torch.set_autocast_enabled("cuda", enabled)
    try:
        yield
    finally:
        torch.set_autocast_enabled("cuda", previous)


def test_the_compiled_rollout_trains_under_zero2(gloo_group):
    """``train.compile_rollout`` reaches the model; the compiled step's gradients reach DeepSpeed's
    optimizer (its rollout weights move) and the loss stays finite. On the CPU with inductor's
    ``default`` mode: the GPU's ``reduce-overhead`` adds CUDA graphs to the same graph."""
    from aime.models.balancing.balancer import GradientBalancer
    from aime.train.worker import build_engine, train_microbatch

    cfg = load_config(
        Config,
        "tiny",
        ["train.compile_rollout=default", "train.zero_stage=2", "train.batch_size=2", "train.warmup_steps=1"],
    )
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    engine, _ = build_engine(cfg, torch.device("cpu"), 1)
    assert engine.module.rollout_compile == "default"
    cell = engine.module.dynamics.cells[0].weight_hh
    before = cell.detach().clone()
    params = [p for p in engine.module.parameters() if p.requires_grad]
    balancer = GradientBalancer(cfg.model.optim.balancing)
    for _ in range(2):
        losses, _ = train_microbatch(engine, balancer, params, tiny_batch(seed=0), bf16=False)
        assert torch.isfinite(losses.total)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert not torch.equal(cell.detach(), before)  # the LSTM, stepped only inside the compiled graph, trained
