"""A dm_control suite task behind the gymnasium API, with pixels, state and concept labels.

Observation: ``{"pixels": uint8 (H, W, 3), "state": float32 (S,)}`` where ``state`` is the task's
observation dict flattened in key order. ``info["concepts"]`` holds the task's boolean concepts at
every step, ``info["discount"]`` dm_control's discount. One agent step is ``action_repeat`` physics
control steps with the same action; rewards are summed. An episode ends with ``terminated`` when
dm_control reports discount 0, else with ``truncated`` at the time limit.

``advance``/``restart`` are the same step and reset without the frame: ``aime.envs.lockstep`` steps
several environments that way and renders all their frames with one renderer. The environment's own
renderer (one GL context) is made only when it renders a frame itself.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np

from aime.envs.concepts import ConceptSet
from aime.envs.render import PixelRenderer
from aime.envs.tasks import SUPPORTED_TASKS, check_image_size, resolve_camera, split_task


class DMCEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str = "cheetah-run",
        *,
        image_size: int = 64,
        action_repeat: int = 2,
        camera: int | str | None = None,
        max_episode_steps: int | None = None,
        render_lite: bool = True,
        egl_device: str | int = "auto",
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
    ):
        from dm_control import suite

        domain, name = split_task(task)
        check_image_size(image_size)
        if action_repeat < 1:
            raise ValueError(f"bad action_repeat {action_repeat!r}; valid: an int >= 1")
        self.task_name, self.domain = task, domain
        self.action_repeat = action_repeat
        self.render_mode = render_mode
        self._env = suite.load(domain, name, task_kwargs={"random": seed})
        physics = self._env.physics
        self.camera = resolve_camera(physics, domain, camera)
        self.image_size, self.render_lite, self.egl_device = image_size, render_lite, egl_device
        self._renderer: PixelRenderer | None = None
        self.concepts = ConceptSet.for_task(task) if task in SUPPORTED_TASKS else ConceptSet.empty(domain)
        task_limit = (
            int(self._env._step_limit) // action_repeat if np.isfinite(self._env._step_limit) else None
        )
        self.max_episode_steps = max_episode_steps or task_limit

        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), dtype=np.float32
        )
        state_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
            }
        )
        self._steps = 0

    @property
    def physics(self) -> Any:
        return self._env.physics

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        state, info = self.restart(seed)
        return {"pixels": self.render(), "state": state}, info

    def step(self, action: np.ndarray):
        state, reward, terminated, truncated, info = self.advance(action)
        return {"pixels": self.render(), "state": state}, reward, terminated, truncated, info

    def restart(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """``reset`` without the frame: (state (S,), info)."""
        if seed is not None:
            self._env.task.random.seed(seed)
        time_step = self._env.reset()
        self._steps = 0
        return self._state(time_step.observation), self._info(1.0)

    def advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``step`` without the frame: (state (S,), reward, terminated, truncated, info)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action shape {action.shape} != expected {self.action_space.shape}")
        reward = 0.0
        for _ in range(self.action_repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        self._steps += 1
        discount = float(time_step.discount if time_step.discount is not None else 1.0)
        terminated = time_step.last() and discount == 0.0
        truncated = not terminated and (
            time_step.last() or (self.max_episode_steps is not None and self._steps >= self.max_episode_steps)
        )
        return self._state(time_step.observation), reward, terminated, truncated, self._info(discount)

    def clone(self, seed: int | None = None) -> DMCEnv:
        """The same environment as ``make_env(task, seed=seed, <same options>)``, made by copying the
        compiled model (about 10 ms) instead of parsing and compiling the task's XML again (60-100 ms;
        an actor with 16 environments started a second later)."""
        twin = copy.copy(self)
        twin._env = copy.deepcopy(self._env)
        twin._env.task.random.seed(seed)  # as suite.load(task_kwargs={"random": seed}) seeds it
        twin._renderer, twin._np_random = None, None
        twin.action_space, twin.observation_space = copy.deepcopy((self.action_space, self.observation_space))
        return twin

    def render(self) -> np.ndarray:
        if self._renderer is None:
            size = self.image_size
            self._renderer = PixelRenderer(
                self.physics, size, size, self.camera, self.render_lite, self.egl_device
            )
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()

    def _state(self, observation: OrderedDict[str, Any]) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])

    def _info(self, discount: float) -> dict[str, Any]:
        return {"concepts": self.concepts(self._env.physics), "discount": discount}
