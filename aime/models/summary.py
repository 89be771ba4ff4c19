"""``aime model summary``: parameters per component and forward/backward FLOPs per sequence.

FLOPs are counted by running one batch through ``torch.utils.flop_counter`` (matmuls, convolutions,
attention). The counter has no formula for the fused LSTM kernel, so the LSTM's FLOPs are added
analytically (2 FLOPs per multiply-add; backward taken as twice forward). Backward is measured for
``sum`` balancing; RGB runs one backward per task, so its backward cost is about n_tasks times that.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from aime.models.config import ModelConfig
from aime.models.world_model import WorldModel


def count_flops(model: WorldModel, *, seq_len: int, batch_size: int = 1) -> dict[str, float]:
    """Forward (incl. losses) and backward FLOPs per sequence of ``seq_len`` steps."""
    cfg = model.cfg
    S, A = cfg.image_size, cfg.action_dim
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (batch_size, seq_len, 3, S, S), dtype=torch.uint8, generator=g)
    action = torch.rand(batch_size, seq_len, A, generator=g) * 2 - 1
    is_first = torch.zeros(batch_size, seq_len, dtype=torch.bool)
    batch = {"obs": obs, "action": action, "is_first": is_first}
    with FlopCounterMode(display=False) as forward:
        loss = model.losses(model(obs, action, is_first), batch)
    with FlopCounterMode(display=False) as backward:
        loss.total.backward()
    lstm = _lstm_flops(model) * seq_len * batch_size
    return {
        "forward": (forward.get_total_flops() + lstm) / batch_size,
        "backward": (backward.get_total_flops() + 2 * lstm) / batch_size,
        "tasks": float(len(loss.tasks)),
    }


def _lstm_flops(model: WorldModel) -> float:
    """Per step and sequence: 4 gates x (input + recurrent) matmuls per layer."""
    cells: list[torch.nn.LSTMCell] = list(model.dynamics.cells)  # type: ignore[arg-type]
    return float(sum(2 * 4 * cell.hidden_size * (cell.input_size + cell.hidden_size) for cell in cells))


def summary(cfg: ModelConfig, *, seq_len: int = 16) -> str:
    """A text table: parameters per component, FLOPs per sequence of ``seq_len`` steps."""
    torch.manual_seed(0)
    model = WorldModel(cfg)
    counts = model.parameter_counts()
    flops = count_flops(model, seq_len=seq_len)
    pillars = {
        "perception": cfg.perception.enabled,
        "attention": cfg.attention.enabled,
        "adversarial": cfg.adversarial.enabled,
    }
    lines = [
        f"AIME world model: {cfg.image_size}x{cfg.image_size} frames, action_dim {cfg.action_dim}, "
        f"latent {cfg.latent_dim}, {cfg.prior.components} components",
        "pillars: " + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in pillars.items()),
        "",
        f"{'component':<24}{'parameters':>14}",
    ]
    for name, n in counts.items():
        if name != "total":
            lines.append(f"{name:<24}{n:>14,}")
    lines += [f"{'total':<24}{counts['total']:>14,}", ""]
    fwd, bwd = flops["forward"], flops["backward"]
    lines += [
        f"FLOPs per sequence (T={seq_len}):",
        f"  forward + losses   {fwd / 1e9:12.3f} GFLOP",
        f"  backward (sum)     {bwd / 1e9:12.3f} GFLOP",
        f"  train step (sum)   {(fwd + bwd) / 1e9:12.3f} GFLOP",
        f"  train step (rgb)   {(fwd + flops['tasks'] * bwd) / 1e9:12.3f} GFLOP  "
        f"(~{int(flops['tasks'])} backward passes)",
    ]
    return "\n".join(lines)
