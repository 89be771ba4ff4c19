"""Building episode tables: from per-step records to the Parquet schema of ``schema.py``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from aime.replay.schema import CONCEPT_PREFIX, EpisodeMetadata, episode_schema


@dataclass
class EpisodeArrays:
    """The columns of one episode (or chunk), stacked: N rows."""

    pixels: np.ndarray  # (N, C, H, W) uint8
    action: np.ndarray  # (N, A) float32
    reward: np.ndarray  # (N,) float32
    discount: np.ndarray  # (N,) float32
    is_first: np.ndarray  # (N,) bool
    is_last: np.ndarray  # (N,) bool
    is_terminal: np.ndarray  # (N,) bool
    state: np.ndarray  # (N, S) float32
    concepts: np.ndarray  # (N, K) bool
    policy_version: np.ndarray  # (N,) int32
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # (N,) index in the episode

    def __len__(self) -> int:
        return len(self.reward)


def episode_table(arrays: EpisodeArrays, meta: EpisodeMetadata) -> pa.Table:
    """One Arrow table in the episode schema; fixed-size columns wrap the numpy buffers without copies."""
    n = len(arrays)
    c, h, w = meta.pixel_shape
    expected = {"pixels": (n, c, h, w), "action": (n, meta.action_dim), "state": (n, meta.state_dim)}
    for name, shape in expected.items():
        got = getattr(arrays, name).shape
        assert got == shape, (name, got, shape)
    assert arrays.concepts.shape == (n, len(meta.concepts)), (arrays.concepts.shape, meta.concepts)
    meta = replace(meta, length=n, episode_return=float(arrays.reward.sum()))
    step = arrays.step if len(arrays.step) == n else np.arange(n, dtype=np.int32)
    columns = {
        "episode_id": pa.array([meta.episode_id] * n, pa.string()),
        "step": pa.array(step.astype(np.int32)),
        "pixels": _fixed_binary(arrays.pixels.astype(np.uint8, copy=False)),
        "action": _fixed_list(arrays.action.astype(np.float32, copy=False), pa.float32()),
        "reward": pa.array(arrays.reward.astype(np.float32, copy=False)),
        "discount": pa.array(arrays.discount.astype(np.float32, copy=False)),
        "is_first": pa.array(arrays.is_first.astype(bool, copy=False)),
        "is_last": pa.array(arrays.is_last.astype(bool, copy=False)),
        "is_terminal": pa.array(arrays.is_terminal.astype(bool, copy=False)),
        "state": _fixed_list(arrays.state.astype(np.float32, copy=False), pa.float32()),
        "policy_version": pa.array(arrays.policy_version.astype(np.int32, copy=False)),
    }
    for k, name in enumerate(meta.concepts):
        columns[CONCEPT_PREFIX + name] = pa.array(arrays.concepts[:, k].astype(bool))
    return pa.Table.from_pydict(columns, schema=episode_schema(meta))


def _fixed_binary(frames: np.ndarray) -> pa.FixedSizeBinaryArray:
    """(N, ...) uint8 -> N fixed-size binary values, wrapping the numpy buffer without a copy."""
    flat = np.ascontiguousarray(frames).reshape(-1)
    size = int(np.prod(frames.shape[1:]))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(frames), [None, pa.py_buffer(flat)])


def _fixed_list(values: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(values).reshape(-1)
    size = int(np.prod(values.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, value_type), size)
