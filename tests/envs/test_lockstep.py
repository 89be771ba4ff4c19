"""LockstepEnvs: several environments stepped together, their frames rendered as tiles of one buffer."""

from __future__ import annotations

import numpy as np

from aime.envs import make_env
from aime.envs.lockstep import LockstepEnvs


def _close_frames(a: np.ndarray, b: np.ndarray) -> None:
    # A tile can differ from a lone frame by one intensity level at a few edge pixels (rasterisation
    # at another framebuffer offset); anything more is a misplaced or flipped tile.
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8, (a.shape, b.shape)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())


def test_lockstep_matches_environments_stepped_alone():
    seeds = [3, 4, 5]
    lone = [make_env("cheetah-run", seed=s, image_size=32) for s in seeds]
    lockstep = LockstepEnvs([make_env("cheetah-run", seed=s, image_size=32) for s in seeds])
    try:
        frames, starts = lockstep.reset([0, 1, 2], [10, 11, 12])
        for k, env in enumerate(lone):
            obs, _ = env.reset(seed=10 + k)
            _close_frames(frames[k], obs["pixels"])
            np.testing.assert_array_equal(starts[k][0], obs["state"])
        rng = np.random.default_rng(0)
        for t in range(8):
            # Environments leave the batch as their episodes end: step a shrinking subset too.
            indices = [0, 1, 2] if t < 5 else [0, 2]
            actions = rng.uniform(-1, 1, (len(indices), 6)).astype(np.float32)
            frames, results = lockstep.step(indices, actions)
            assert frames.shape == (len(indices), 32, 32, 3)
            for k, (i, action) in enumerate(zip(indices, actions, strict=True)):
                obs, reward, terminated, truncated, info = lone[i].step(action)
                state, reward_l, terminated_l, truncated_l, info_l = results[k]
                _close_frames(frames[k], obs["pixels"])
                np.testing.assert_array_equal(state, obs["state"])
                assert (reward_l, terminated_l, truncated_l) == (reward, terminated, truncated)
                assert info_l["concepts"] == info["concepts"]
        assert frames.std() > 0, "frames show the scene, not a cleared buffer"
    finally:
        lockstep.close()
        for env in lone:
            env.close()


def test_frames_are_distinct_tiles_not_copies_of_one():
    lockstep = LockstepEnvs([make_env("cheetah-run", seed=s, image_size=16) for s in range(4)])
    try:
        lockstep.reset(range(4), [0, 1, 2, 3])
        rng = np.random.default_rng(1)
        for _ in range(20):  # random actions drive the four bodies apart
            frames, _ = lockstep.step(range(4), rng.uniform(-1, 1, (4, 6)).astype(np.float32))
        assert lockstep.gl_renderer()
    finally:
        lockstep.close()
    flat = frames.reshape(4, -1).astype(int)
    assert all(np.abs(flat[i] - flat[j]).sum() > 0 for i in range(4) for j in range(i + 1, 4))


def test_a_clone_is_the_environment_make_env_builds_for_its_seed():
    original = make_env("cartpole-swingup", seed=0, image_size=16)
    twin, fresh = original.clone(seed=9), make_env("cartpole-swingup", seed=9, image_size=16)
    try:
        assert twin.physics.model.ptr is not original.physics.model.ptr  # tasks may edit their model
        for env in (twin, fresh):
            env.reset()  # no seed: the construction seed decides the initial state
        for _ in range(5):
            a, b = twin.step(np.full(1, 0.3, np.float32)), fresh.step(np.full(1, 0.3, np.float32))
            np.testing.assert_array_equal(a[0]["state"], b[0]["state"])
            np.testing.assert_array_equal(a[0]["pixels"], b[0]["pixels"])
            assert a[1:4] == b[1:4]
    finally:
        for env in (original, twin, fresh):
            env.close()
