"""Test helpers: the model presets and a deterministic synthetic video whose motion follows the actions."""

from __future__ import annotations

import dataclasses

import torch

from aime.config.loader import CONFIG_DIR, build, read_yaml
from aime.models import ModelConfig

PRESETS = CONFIG_DIR / "model"


def load_preset(name: str) -> ModelConfig:
    return build(ModelConfig, read_yaml(PRESETS / f"{name}.yaml"))


def with_pillars(
    cfg: ModelConfig,
    *,
    perception: bool | None = None,
    attention: bool | None = None,
    adversarial: bool | None = None,
) -> ModelConfig:
    def flip(sub, value):  # type: ignore[no-untyped-def]
        return sub if value is None else dataclasses.replace(sub, enabled=value)

    return dataclasses.replace(
        cfg,
        perception=flip(cfg.perception, perception),
        attention=flip(cfg.attention, attention),
        adversarial=flip(cfg.adversarial, adversarial),
    )


def moving_squares(cfg: ModelConfig, *, batch: int, steps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A coloured square on a gradient background; action[:, t, :2] moves it between frame t and t+1."""
    g = torch.Generator().manual_seed(seed)
    S, A = cfg.image_size, cfg.action_dim
    side = S // 4
    action = torch.rand(batch, steps, A, generator=g) * 2 - 1
    pos = torch.randint(0, S - side, (batch, 2), generator=g).float()
    colour = torch.randint(64, 256, (batch, 3), generator=g)
    ramp = torch.linspace(0, 60, S).round().to(torch.uint8)
    obs = ramp.view(1, 1, 1, 1, S).expand(batch, steps, 3, S, S).clone()
    for t in range(steps):
        y, x = pos.round().long().unbind(-1)
        for b in range(batch):
            obs[b, t, :, y[b] : y[b] + side, x[b] : x[b] + side] = colour[b].view(3, 1, 1).to(torch.uint8)
        pos = (pos + 3 * action[:, t, :2]).clamp(0, S - side)
    is_first = torch.zeros(batch, steps, dtype=torch.bool)
    is_first[:, 0] = True
    return {"obs": obs, "action": action, "is_first": is_first}
