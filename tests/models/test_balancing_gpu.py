"""RGB on a GPU never waits for the device: a host sync between the per-task backward passes and the
update would idle the GPU while the rest of the step is launched. Runs only where CUDA is."""

from __future__ import annotations

import pytest
import torch

from aime.models.balancing import GradientBalancer
from aime.models.config import BalancingConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_rgb_balancing_queues_without_a_host_sync():
    torch.manual_seed(0)
    layers = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)).cuda()
    unused = torch.nn.Parameter(torch.ones(3, device="cuda"))  # a task-free parameter: zero rows
    params = [*layers.parameters(), unused]
    balancer = GradientBalancer(BalancingConfig(mode="rgb"))
    x = torch.randn(32, 8, device="cuda")
    for _ in range(2):  # the first call starts the consensus, the second moves it
        out = layers(x)
        tasks = {"a": out[:, :2].square().mean(), "b": out[:, 2:].abs().mean()}
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
        try:
            result = balancer(tasks, params)
            result.loss.backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert unused.grad is not None and float(unused.grad.abs().sum()) == 0.0
    assert all(torch.isfinite(p.grad).all() for p in layers.parameters())
    assert float(balancer.consensus.norm()) == pytest.approx(1.0, abs=1e-5)
