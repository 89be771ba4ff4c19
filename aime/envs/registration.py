"""Every supported task as a gymnasium id: ``gymnasium.make("aime/cheetah-run-v0", image_size=64)``.

Registered when ``aime.envs`` is imported; keyword arguments are DMCEnv's (image_size, action_repeat,
camera, render_lite, ...). The episode limit is DMCEnv's own (``max_episode_steps``), so gymnasium's
TimeLimit wrapper is not added on top; its other standard wrappers apply as usual.
"""

from __future__ import annotations

import gymnasium

from aime.envs.tasks import SUPPORTED_TASKS

NAMESPACE = "aime"


def env_id(task: str) -> str:
    return f"{NAMESPACE}/{task}-v0"


def register_tasks() -> None:
    for task in SUPPORTED_TASKS:
        if env_id(task) not in gymnasium.registry:
            gymnasium.register(id=env_id(task), entry_point="aime.envs.dmc:DMCEnv", kwargs={"task": task})
