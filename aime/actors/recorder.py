"""Turns one environment's steps into episode rows (RLDS alignment) and cuts them into chunks."""

from __future__ import annotations

from typing import Any

import numpy as np

from aime.replay.episode import EpisodeArrays


class EpisodeRecorder:
    """Row t holds observation t, the action taken at it, and what that action earned.

    ``start`` stores the first observation; each ``step`` completes the pending row and holds the next
    observation; the episode's end adds a final row (zero action, ``is_last``). ``chunk_steps`` cuts
    long episodes into several chunks; a chunk is returned as soon as it is full.
    """

    def __init__(self, action_dim: int, chunk_steps: int | None = None):
        self.action_dim = action_dim
        self.chunk_steps = chunk_steps
        self._rows: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._step = 0

    def start(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self._rows, self._step = [], 0
        self._pending = self._observation_row(obs, info, is_first=True)

    def step(
        self,
        action: np.ndarray,
        reward: float,
        obs: dict[str, np.ndarray],
        info: dict[str, Any],
        terminated: bool,
        truncated: bool,
        policy_version: int,
    ) -> list[EpisodeArrays]:
        """Record one transition; returns the chunks completed by it (possibly none)."""
        assert self._pending is not None, "EpisodeRecorder.step() before start()"
        discount = float(info.get("discount", 0.0 if terminated else 1.0))
        self._emit(self._pending, action, reward, discount, policy_version)
        self._pending = self._observation_row(obs, info, is_first=False)
        chunks = []
        if terminated or truncated:
            last = self._pending | {"is_last": True, "is_terminal": bool(terminated)}
            self._emit(
                last, np.zeros(self.action_dim, np.float32), 0.0, 0.0 if terminated else 1.0, policy_version
            )
            self._pending = None
            chunks.append(self._flush())
        elif self.chunk_steps is not None and len(self._rows) >= self.chunk_steps:
            chunks.append(self._flush())
        return chunks

    @property
    def active(self) -> bool:
        return self._pending is not None

    def _observation_row(
        self, obs: dict[str, np.ndarray], info: dict[str, Any], is_first: bool
    ) -> dict[str, Any]:
        concepts = info.get("concepts", {})
        return {
            "pixels": np.ascontiguousarray(obs["pixels"].transpose(2, 0, 1)),  # (H, W, C) -> (C, H, W)
            "state": obs["state"],
            "concepts": np.fromiter(concepts.values(), bool, len(concepts)),
            "is_first": is_first,
            "is_last": False,
            "is_terminal": False,
        }

    def _emit(
        self, row: dict[str, Any], action: np.ndarray, reward: float, discount: float, version: int
    ) -> None:
        self._rows.append(
            row
            | {
                "action": action,
                "reward": reward,
                "discount": discount,
                "version": version,
                "step": self._step,
            }
        )
        self._step += 1

    def _flush(self) -> EpisodeArrays:
        rows, self._rows = self._rows, []
        return EpisodeArrays(
            pixels=np.stack([r["pixels"] for r in rows]),
            action=np.stack([r["action"] for r in rows]).astype(np.float32),
            reward=np.array([r["reward"] for r in rows], np.float32),
            discount=np.array([r["discount"] for r in rows], np.float32),
            is_first=np.array([r["is_first"] for r in rows], bool),
            is_last=np.array([r["is_last"] for r in rows], bool),
            is_terminal=np.array([r["is_terminal"] for r in rows], bool),
            state=np.stack([r["state"] for r in rows]).astype(np.float32),
            concepts=np.stack([r["concepts"] for r in rows]).reshape(len(rows), -1),
            policy_version=np.array([r["version"] for r in rows], np.int32),
            step=np.array([r["step"] for r in rows], np.int32),
        )
