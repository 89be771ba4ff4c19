"""The bank on a GPU never waits for the device: scoring and a training step queue without a host
sync (a sync per call would idle the GPU between lens calls). Runs only where CUDA is."""

from __future__ import annotations

import pytest
import torch

from aime.lenses.bank import LensBank, LensSpec
from aime.lenses.fit import balanced_bce

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_bank_scores_and_trains_without_a_host_sync():
    dims = {"z": 32, "h": 256, "embed": 512}
    specs = [
        LensSpec(f"c{i}", name, d, standardise=i % 2 == 0) for i, (name, d) in enumerate(dims.items())
    ] * 8
    bank = LensBank(specs).cuda()
    x = {name: torch.randn(64, d, device="cuda") for name, d in dims.items()}
    labels = (torch.rand(64, len(specs), device="cuda") < 0.3).float()
    rate = labels.mean(0)
    optimizer = torch.optim.AdamW(bank.parameters(), lr=1e-3)
    half = LensBank(specs).cuda().to(torch.bfloat16).eval()
    for _ in range(2):  # the first step creates AdamW's state
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
        try:
            loss = balanced_bce(bank(x), labels, rate).sum()
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                scores = half(x)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert scores.shape == (64, len(specs)) and scores.dtype == torch.bfloat16
    assert torch.isfinite(loss)
