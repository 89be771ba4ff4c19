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

    Rows are written into preallocated columns (``capacity`` rows, doubled when an episode runs
    longer), the frame transposed to (C, H, W) in the one copy it needs: the caller's frame may be a
    view of a renderer's buffer that the next render overwrites. A returned chunk owns its arrays.
    """

    def __init__(self, action_dim: int, chunk_steps: int | None = None, capacity: int = 1024):
        self.action_dim = action_dim
        self.chunk_steps = chunk_steps
        self.capacity = capacity if chunk_steps is None else chunk_steps + 1
        self._cols: EpisodeArrays | None = None
        self._n = 0  # completed rows in the current chunk; row _n holds the pending observation
        self._step = 0
        self.active = False

    def start(self, pixels: np.ndarray, state: np.ndarray, info: dict[str, Any]) -> None:
        """The first observation: ``pixels`` (H, W, C) uint8, ``state`` (S,)."""
        concepts = info.get("concepts", {})
        self._cols = _allocate(self.capacity, pixels.shape, len(state), self.action_dim, len(concepts))
        self._n, self._step, self.active = 0, 0, True
        self._observe(pixels, state, concepts, is_first=True)

    def step(
        self,
        action: np.ndarray,
        reward: float,
        pixels: np.ndarray,
        state: np.ndarray,
        info: dict[str, Any],
        terminated: bool,
        truncated: bool,
        policy_version: int,
    ) -> list[EpisodeArrays]:
        """Record one transition; returns the chunks completed by it (possibly none)."""
        assert self.active, "EpisodeRecorder.step() before start()"
        discount = float(info.get("discount", 0.0 if terminated else 1.0))
        self._complete(action, reward, discount, policy_version)
        self._observe(pixels, state, info.get("concepts", {}), is_first=False)
        if terminated or truncated:
            cols = self._cols
            assert cols is not None
            cols.is_last[self._n] = True
            cols.is_terminal[self._n] = bool(terminated)
            zero = np.zeros(self.action_dim, np.float32)
            self._complete(zero, 0.0, 0.0 if terminated else 1.0, policy_version)
            self.active = False
            return [self._cut(keep_pending=False)]
        if self.chunk_steps is not None and self._n >= self.chunk_steps:
            return [self._cut(keep_pending=True)]
        return []

    def _observe(
        self, pixels: np.ndarray, state: np.ndarray, concepts: dict[str, bool], is_first: bool
    ) -> None:
        cols = self._cols
        assert cols is not None
        if self._n == len(cols):
            self._cols = cols = _grow(cols, self._n)
        n = self._n
        cols.pixels[n] = pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        cols.state[n] = state
        cols.concepts[n] = tuple(concepts.values())
        cols.is_first[n] = is_first
        cols.is_last[n] = cols.is_terminal[n] = False

    def _complete(self, action: np.ndarray, reward: float, discount: float, version: int) -> None:
        cols = self._cols
        assert cols is not None
        n = self._n
        cols.action[n] = action
        cols.reward[n], cols.discount[n] = reward, discount
        cols.policy_version[n], cols.step[n] = version, self._step
        self._n += 1
        self._step += 1

    def _cut(self, keep_pending: bool) -> EpisodeArrays:
        """The completed rows as a chunk; the pending observation, if kept, starts fresh columns."""
        cols, n = self._cols, self._n
        assert cols is not None
        chunk = EpisodeArrays(**{name: getattr(cols, name)[:n] for name in _COLUMNS})
        if keep_pending:
            self._cols = _allocate(
                self.capacity,
                cols.pixels.shape[1:],
                cols.state.shape[1],
                self.action_dim,
                cols.concepts.shape[1],
                transposed=True,
            )
            for name in ("pixels", "state", "concepts", "is_first", "is_last", "is_terminal"):
                getattr(self._cols, name)[0] = getattr(cols, name)[n]
            self._n = 0
        else:
            self._cols = None
        return chunk


_COLUMNS = (
    "pixels",
    "action",
    "reward",
    "discount",
    "is_first",
    "is_last",
    "is_terminal",
    "state",
    "concepts",
    "policy_version",
    "step",
)


def _allocate(
    rows: int,
    frame_shape: tuple[int, ...],
    state_dim: int,
    action_dim: int,
    num_concepts: int,
    transposed: bool = False,
) -> EpisodeArrays:
    c, h, w = frame_shape if transposed else (frame_shape[2], frame_shape[0], frame_shape[1])
    return EpisodeArrays(
        pixels=np.empty((rows, c, h, w), np.uint8),
        action=np.empty((rows, action_dim), np.float32),
        reward=np.empty(rows, np.float32),
        discount=np.empty(rows, np.float32),
        is_first=np.empty(rows, bool),
        is_last=np.empty(rows, bool),
        is_terminal=np.empty(rows, bool),
        state=np.empty((rows, state_dim), np.float32),
        concepts=np.empty((rows, num_concepts), bool),
        policy_version=np.empty(rows, np.int32),
        step=np.empty(rows, np.int32),
    )


def _grow(cols: EpisodeArrays, rows: int) -> EpisodeArrays:
    """Twice the rows, the first ``rows`` kept: for episodes longer than the capacity guessed."""
    grown = {}
    for name in _COLUMNS:
        old = getattr(cols, name)
        new = np.empty((2 * max(rows, 1), *old.shape[1:]), old.dtype)
        new[:rows] = old[:rows]
        grown[name] = new
    return EpisodeArrays(**grown)
