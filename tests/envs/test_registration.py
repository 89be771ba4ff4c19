"""The tasks through gymnasium's registry: gymnasium.make, the standard wrappers, the env checker."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

import aime.envs  # noqa: F401  (registers the tasks)
from aime.envs import SUPPORTED_TASKS, env_id


def test_every_task_is_registered_and_cheetah_passes_the_env_checker():
    assert all(env_id(task) in gymnasium.registry for task in SUPPORTED_TASKS)
    env = gymnasium.make("aime/cheetah-run-v0", image_size=32, max_episode_steps=5)
    check_env(env.unwrapped, skip_render_check=True)
    observation, _ = env.reset(seed=3)
    assert observation["pixels"].shape == (32, 32, 3) and observation["pixels"].dtype == np.uint8
    env.close()


def test_standard_wrappers_apply():
    env = gymnasium.wrappers.RecordEpisodeStatistics(
        gymnasium.make("aime/cheetah-run-v0", image_size=32, max_episode_steps=4)
    )
    env.reset(seed=0)
    done, steps, info = False, 0, {}
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        done, steps = terminated or truncated, steps + 1
    assert steps == 4 and info["episode"]["l"] == 4
    env.close()
