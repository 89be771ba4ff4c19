"""bf16 autocast over fp32 weights, the precision ``train.bf16`` uses: the step runs and stays finite."""

from __future__ import annotations

import torch
from model_helpers import moving_squares

from aime.models import WorldModel


def test_a_bf16_autocast_step_is_finite_and_close_to_fp32(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=2, steps=4)
    torch.manual_seed(1)
    fp32 = model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch).total
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["obs"], batch["action"], batch["is_first"])
        bf16 = model.losses(out, batch).total
    assert bf16.dtype == torch.float32  # likelihoods and KLs are summed in fp32
    bf16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert abs(float(bf16) - float(fp32)) < 0.05 * abs(float(fp32)) + 1.0
