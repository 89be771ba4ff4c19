"""Policies that drive rollout actors.

A policy acts for a batch of environments at once and may hold weights that a trainer updates while
the actor runs: ``set_weights(weights, version)`` swaps them between steps, and every step records the
``version`` that chose its action, so samples carry the weights that produced them.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Policy(Protocol):
    version: int

    def begin_episode(self, env_index: int, seed: int) -> None:
        """Called at every episode start of environment ``env_index`` (reset recurrent state, seed)."""

    def act(self, observations: dict[str, np.ndarray], env_indices: np.ndarray) -> np.ndarray:
        """Actions (N, A) for the N environments ``env_indices``; observations are batched (N, ...)."""
        raise NotImplementedError("a Policy returns one action per environment in env_indices")

    def set_weights(self, weights: Any, version: int) -> None:
        """Adopt new weights; later actions are stamped with ``version``."""


class RandomPolicy:
    """Uniform random actions, seeded per episode so a retried episode is the same episode."""

    def __init__(self, action_space: gym.spaces.Box, num_envs: int):
        self.low = action_space.low.astype(np.float32)
        self.high = action_space.high.astype(np.float32)
        self.version = 0
        self._rngs = [np.random.default_rng(i) for i in range(num_envs)]

    def begin_episode(self, env_index: int, seed: int) -> None:
        self._rngs[env_index] = np.random.default_rng(seed)

    def act(self, observations: dict[str, np.ndarray], env_indices: np.ndarray) -> np.ndarray:
        shape = self.low.shape
        return np.stack([self._rngs[i].uniform(self.low, self.high, shape) for i in env_indices]).astype(
            np.float32
        )

    def set_weights(self, weights: Any, version: int) -> None:
        self.version = version


POLICIES = {"random": RandomPolicy}


def make_policy(name: str, action_space: gym.spaces.Box, num_envs: int) -> Policy:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICIES)}")
    return POLICIES[name](action_space, num_envs)
