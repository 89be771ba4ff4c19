from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from aime.envs import SUPPORTED_TASKS, make_env


@pytest.mark.parametrize("task", SUPPORTED_TASKS)
def test_env_checker_passes(task):
    env = make_env(task, seed=0, image_size=16, max_episode_steps=10)
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=3)
        assert obs["pixels"].shape == (16, 16, 3) and obs["pixels"].dtype == np.uint8
        assert obs["state"].dtype == np.float32 and obs["state"].ndim == 1
        assert set(info["concepts"]) == set(env.concepts.names)
    finally:
        env.close()


def test_pixels_show_the_scene_and_seeds_reproduce():
    env = make_env("walker-walk", image_size=32)
    try:
        first, _ = env.reset(seed=5)
        again, _ = env.reset(seed=5)
        other, _ = env.reset(seed=6)
        assert first["pixels"].std() > 5, "a rendered frame is not blank"
        np.testing.assert_array_equal(first["state"], again["state"])
        np.testing.assert_array_equal(first["pixels"], again["pixels"])
        assert not np.array_equal(first["state"], other["state"])
    finally:
        env.close()


def test_action_repeat_and_time_limit():
    env = make_env("cartpole-swingup", image_size=16, action_repeat=4)
    try:
        env.reset(seed=0)
        steps, truncated = 0, False
        while not truncated:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert not terminated
            steps += 1
        assert steps == 1000 // 4  # the task's 1000 control steps / action repeat
        assert env.max_episode_steps == 250
    finally:
        env.close()


def test_bad_task_size_and_camera_list_valid_choices():
    with pytest.raises(ValueError, match="unknown task 'cheetah-fly'.*cheetah-run"):
        make_env("cheetah-fly")
    with pytest.raises(ValueError, match="bad image size 3; valid: an int from 8 to 1024"):
        make_env("cheetah-run", image_size=3)
    with pytest.raises(ValueError, match="unknown camera 'top'.*side"):
        make_env("cheetah-run", camera="top", image_size=16)
    with pytest.raises(ValueError, match="bad camera 9"):
        make_env("cheetah-run", camera=9, image_size=16)


def test_camera_by_name_renders_a_different_view():
    side = make_env("cheetah-run", camera="side", image_size=32, seed=0)
    back = make_env("cheetah-run", camera="back", image_size=32, seed=0)
    try:
        a, _ = side.reset(seed=0)
        b, _ = back.reset(seed=0)
        assert side.camera == 0 and back.camera == 1
        assert not np.array_equal(a["pixels"], b["pixels"])
    finally:
        side.close()
        back.close()
