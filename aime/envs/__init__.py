"""dm_control tasks behind the gymnasium API: pixels, state, action repeat and concept labels."""

from __future__ import annotations

import os

# Headless rendering: EGL works on CPU-only machines (Mesa llvmpipe) and on NVIDIA GPUs alike.
os.environ.setdefault("MUJOCO_GL", "egl")

from typing import TYPE_CHECKING, Any  # noqa: E402

from aime.envs.registration import env_id, register_tasks  # noqa: E402
from aime.envs.tasks import SUPPORTED_TASKS  # noqa: E402

register_tasks()  # gymnasium.make("aime/<task>-v0")

if TYPE_CHECKING:
    from aime.config.schema import EnvConfig
    from aime.envs.dmc import DMCEnv


def make_env(task: str = "cheetah-run", seed: int | None = None, **kwargs: Any) -> DMCEnv:
    """A gymnasium env for suite task ``domain-task``; kwargs as :class:`aime.envs.dmc.DMCEnv`."""
    from aime.envs.dmc import DMCEnv

    return DMCEnv(task, seed=seed, **kwargs)


def make_env_from_config(cfg: EnvConfig, seed: int | None = None) -> DMCEnv:
    return make_env(
        cfg.task,
        seed=seed,
        image_size=cfg.image_size,
        action_repeat=cfg.action_repeat,
        camera=cfg.camera,
        max_episode_steps=cfg.max_episode_steps,
        render_lite=cfg.render_lite,
        egl_device=cfg.egl_device,
    )


__all__ = ["SUPPORTED_TASKS", "env_id", "make_env", "make_env_from_config"]
