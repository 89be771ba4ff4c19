"""Several environments of one task stepped together, their frames rendered by one renderer.

    LockstepEnvs([DMCEnv, ...])  -- reset(indices, seeds) / step(indices, actions)
        each env: restart / advance (physics, reward, concepts; no frame)
        one PixelRenderer: the N frames as tiles of one framebuffer, one read-back  -> (N, H, W, 3)

On a GPU the read-back, not the drawing, bounds a frame (``aime/envs/render.py``); one read-back per
lockstep step instead of per environment is what lets many actors share one GPU
(``benchmarks/render_scaling.py``). The frames returned are a view of the renderer's buffer, valid
until the next call: copy what you keep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aime.envs.dmc import DMCEnv
from aime.envs.render import PixelRenderer

StepResult = tuple[
    np.ndarray, float, bool, bool, dict[str, Any]
]  # state, reward, terminated, truncated, info


class LockstepEnvs:
    def __init__(self, envs: Sequence[DMCEnv]):
        assert envs, "LockstepEnvs needs at least one environment"
        first = envs[0]
        view = (first.task_name, first.image_size, first.camera, first.render_lite)
        for env in envs:
            assert isinstance(env, DMCEnv), f"LockstepEnvs steps aime DMCEnv environments, got {type(env)}"
            got = (env.task_name, env.image_size, env.camera, env.render_lite)
            assert got == view, ("environments of one LockstepEnvs must share task and view", got, view)
        self.envs = list(envs)
        size = first.image_size
        self._renderer = PixelRenderer(
            first.physics, size, size, first.camera, first.render_lite, first.egl_device, tiles=len(envs)
        )

    @classmethod
    def from_factory(cls, make_env: Callable[[int], DMCEnv], seeds: Sequence[int]) -> LockstepEnvs:
        """``make_env(seed)`` for the first seed, clones of it (``DMCEnv.clone``) for the others."""
        first = make_env(seeds[0])
        return cls([first, *(first.clone(seed) for seed in seeds[1:])])

    def __len__(self) -> int:
        return len(self.envs)

    def reset(
        self, indices: Sequence[int], seeds: Sequence[int]
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, dict[str, Any]]]]:
        """Frames (N, H, W, 3) and (state, info) of the environments ``indices`` after reset."""
        starts = [self.envs[i].restart(seed) for i, seed in zip(indices, seeds, strict=True)]
        return self.render(indices), starts

    def step(self, indices: Sequence[int], actions: np.ndarray) -> tuple[np.ndarray, list[StepResult]]:
        """Step the environments ``indices`` with ``actions`` (N, A); frames (N, H, W, 3) and results."""
        assert len(actions) == len(indices), (actions.shape, len(indices))
        results = [self.envs[i].advance(action) for i, action in zip(indices, actions, strict=True)]
        return self.render(indices), results

    def render(self, indices: Sequence[int]) -> np.ndarray:
        return self._renderer.render_many([self.envs[i].physics for i in indices])  # (N, H, W, 3)

    def gl_renderer(self) -> str:
        return self._renderer.gl_renderer()

    def close(self) -> None:
        self._renderer.close()
        for env in self.envs:
            env.close()
