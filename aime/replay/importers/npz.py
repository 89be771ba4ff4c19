"""Dreamer-style ``.npz`` episodes -> decoded episodes in the store's (RLDS) alignment.

Dreamer replay directories hold one ``.npz`` per episode with arrays over T observations: ``image``
(T, H, W, 3) uint8, ``action`` (T, A), ``reward`` (T,), ``is_first``, ``is_last``, ``is_terminal``,
optionally ``discount`` and the proprioceptive keys. Their alignment differs from the store's:
``action[t]`` is the action that *led to* ``image[t]`` (``action[0]`` is zero) and ``reward[t]`` was
received on arriving at ``image[t]``. The store wants the action taken *at* row t and the reward it
earned, so both shift one row earlier: ``action'[t] = action[t + 1]``, ``reward'[t] = reward[t + 1]``,
and the final row gets zeros. A file holding several episodes (``is_first`` inside it) is split.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from aime.replay.importers.files import SourceFile, list_files, open_input
from aime.replay.importers.rlds import DecodedEpisode, rlds_rows
from aime.replay.importers.tasks import TaskSpec, task_spec

REQUIRED = ("image", "action", "reward")
NOT_STATE = {"image", "action", "reward", "discount", "is_first", "is_last", "is_terminal"}


@dataclass(frozen=True)
class NpzImporter:
    root: str
    task: str
    source: str = "npz"

    def list_files(self) -> list[SourceFile]:
        task_spec(self.task)  # fail before any work on a malformed task name
        return list_files(self.root, lambda rel: rel.endswith(".npz"))

    def describe(self, file: SourceFile) -> tuple[str | None, dict[str, Any]]:
        return self.task, {"source_file": file.rel}

    def read(self, file: SourceFile) -> Iterator[tuple[int, DecodedEpisode | str]]:
        """(episode index in the file, episode or the reason it was skipped)."""
        spec = task_spec(self.task)
        try:
            with open_input(file.path, self.root) as stream:
                with np.load(io.BytesIO(stream.read()), allow_pickle=False) as npz:
                    data = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            yield 0, f"unreadable npz: {type(error).__name__}: {error}"
            return
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            yield 0, f"missing arrays {missing} (has {sorted(data)})"
            return
        T = len(data["image"])
        is_first = data.get("is_first", np.zeros(T, bool)).astype(bool).copy()
        is_first[0] = True
        starts = np.flatnonzero(is_first).tolist() + [T]
        for index, (lo, hi) in enumerate(zip(starts[:-1], starts[1:], strict=True)):
            try:
                yield index, dreamer_episode({k: v[lo:hi] for k, v in data.items() if _per_step(v, T)}, spec)
            except ValueError as error:
                yield index, str(error)


def dreamer_episode(data: dict[str, np.ndarray], spec: TaskSpec) -> DecodedEpisode:
    """One episode's Dreamer arrays -> store rows (actions and rewards shifted one row earlier)."""
    image, action = data["image"], np.asarray(data["action"], np.float64)
    T = len(image)
    if image.ndim != 4 or image.dtype != np.uint8 or 3 not in (image.shape[1], image.shape[3]):
        raise ValueError(f"image: expected (T, H, W, 3) uint8, got {image.shape} {image.dtype}")
    pixels = image.transpose(0, 3, 1, 2) if image.shape[3] == 3 else image  # (T, C, H, W)
    if action.ndim != 2 or len(action) != T:
        raise ValueError(f"action: expected ({T}, A), got {action.shape}")
    if spec.action_dim is not None and action.shape[1] != spec.action_dim:
        raise ValueError(
            f"wrong action length: {action.shape[1]} per step, {spec.task} has {spec.action_dim}"
        )
    reward = np.asarray(data["reward"], np.float64).reshape(T)
    terminal = data.get("is_terminal", np.zeros(T, bool)).astype(bool).reshape(T)
    discount = np.asarray(data.get("discount", 1.0 - terminal), np.float64).reshape(T)
    shifted = {
        "action": np.concatenate([action[1:], np.zeros((1, action.shape[1]))]),
        "reward": np.concatenate([reward[1:], [0.0]]),
        "discount": np.concatenate([discount[1:], [1.0]]),
    }
    fields = _state_fields(data, spec, T)
    arrays = rlds_rows(
        np.ascontiguousarray(pixels),
        shifted["action"],
        shifted["reward"],
        shifted["discount"],
        terminal,
        fields,
        spec,
    )
    return DecodedEpisode(arrays, fields)


def _state_fields(data: dict[str, np.ndarray], spec: TaskSpec, T: int) -> dict[str, np.ndarray]:
    """The task's observation keys in dm_control order if all are there, else a ``state`` array, else none."""
    if spec.state_keys is not None and all(key in data for key in spec.state_keys):
        keys: tuple[str, ...] = spec.state_keys
    elif "state" in data:
        keys = ("state",)
    else:
        return {}
    return {key: np.asarray(data[key], np.float64).reshape(T, -1) for key in keys}


def _per_step(value: np.ndarray, T: int) -> bool:
    return value.ndim >= 1 and len(value) == T and not set(value.dtype.names or ()) and value.dtype != object
