"""Windows of consecutive rows read from episode files: the one reader, for training and evaluation.

    [Window(path, start, episode_id)] x n --read_windows--> {column: (n, T, ...) numpy array}

Only the row groups a window overlaps are decoded; each file is opened once per call. With a
``FrameCache`` (frame_cache.py) each file is decoded once, whole, and windows copy their rows. Training draws
windows at random (``sampler.py``); evaluation plans a fixed, evenly spread set (``plan_windows``)
on the driver from the store listing alone, so every call sees the same frames.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aime.replay.schema import EpisodeMetadata, check_schema
from aime.replay.store import EpisodeFile, ReplayStore

if TYPE_CHECKING:
    from aime.replay.frame_cache import FrameCache

V = TypeVar("V")

# The world model's batch keys and the replay columns they come from.
MODEL_INPUTS = {"obs": "pixels", "action": "action", "is_first": "is_first"}


@dataclass(frozen=True)
class Window:
    path: str  # the episode file, as the store lists it
    start: int  # first row
    episode_id: str
    stamp: str = ""  # what tells this file from an earlier one at the same path (its size): cache keys

    @property
    def identity(self) -> str:
        """The episode file this window reads, as a frame cache keys it (with the store and path)."""
        return f"{self.episode_id}\0{self.stamp}"


def model_inputs(columns: Mapping[str, V]) -> dict[str, V]:
    """The world model's batch (obs, action, is_first) from replay columns (numpy or torch)."""
    return {key: columns[column] for key, column in MODEL_INPUTS.items()}


def read_model_inputs(store: ReplayStore, windows: Sequence[Window], length: int) -> dict[str, np.ndarray]:
    """The windows as the model's batch: obs uint8 (n, T, C, H, W), action (n, T, A), is_first (n, T)."""
    return model_inputs(read_windows(store, windows, length, list(MODEL_INPUTS.values())))


def plan_windows(files: Sequence[EpisodeFile], length: int, count: int) -> list[Window]:
    """``count`` windows of ``length`` rows, evenly spaced over every valid window of ``files``.

    Evenly spaced rather than random: every episode contributes in proportion to its length and the
    plan is a function of the listing alone. Fewer windows come back when fewer exist.
    """
    assert length >= 1 and count >= 1, (length, count)
    usable = [f for f in files if f.num_rows >= length]
    per_file = np.array([f.num_rows - length + 1 for f in usable], np.int64)
    total = int(per_file.sum())
    if total == 0:
        longest = max((f.num_rows for f in files), default=0)
        raise ValueError(
            f"no held-out episode has the {length} steps a window needs (context + horizon); the longest "
            f"of {len(files)} has {longest}: lower --context/--horizon or collect longer episodes"
        )
    flat = np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(np.int64))
    ends = np.cumsum(per_file)
    file_index = np.searchsorted(ends, flat, side="right")
    starts = flat - (ends - per_file)[file_index]
    return [
        Window(usable[i].path, int(s), usable[i].meta.episode_id)
        for i, s in zip(file_index, starts, strict=True)
    ]


def read_windows(
    store: ReplayStore,
    windows: Sequence[Window],
    length: int,
    columns: Sequence[str],
    cache: FrameCache | None = None,
) -> dict[str, np.ndarray]:
    """Each of ``columns`` as one array of ``(n, length, ...)`` in the stored dtype: ``pixels`` uint8
    (n, T, C, H, W), ``action`` float32 (n, T, A), ``is_first`` bool (n, T), ... in window order.
    With a ``cache`` (frame_cache.py) each file is decoded once, whole, and windows copy their rows."""
    out: dict[str, np.ndarray] = {}
    by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
    identity: dict[str, str] = {}  # a file's, for the cache's keys
    for row, window in enumerate(windows):
        by_file[window.path].append((row, window.start))
        identity[window.path] = window.identity
    for path, rows in by_file.items():
        if cache is not None:
            _copy_rows(out, cache.columns(store, path, identity[path], columns), rows, len(windows), length)
            continue
        with store.fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            meta = check_schema(parquet.schema_arrow)
            counts = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            for first, last, span_rows in _row_group_spans(starts, rows, length):
                table = parquet.read_row_groups(range(first, last + 1), columns=list(columns))
                offset = int(starts[first])
                for name in columns:
                    values = column_numpy(table, name, meta)  # (rows, ...)
                    if name not in out:
                        out[name] = np.empty((len(windows), length, *values.shape[1:]), values.dtype)
                    for row, start in span_rows:
                        rows_of_window = values[start - offset : start - offset + length]
                        assert len(rows_of_window) == length, (path, start, length, parquet.metadata.num_rows)
                        out[name][row] = rows_of_window
    return out


def _copy_rows(
    out: dict[str, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    rows: list[tuple[int, int]],
    n: int,
    length: int,
) -> None:
    """Copy each window's ``length`` rows of one file's whole columns into ``out``'s (n, length, ...)."""
    for name, values in arrays.items():
        if name not in out:
            out[name] = np.empty((n, length, *values.shape[1:]), values.dtype)
        for row, start in rows:
            assert start + length <= len(values), (name, start, length, len(values))
            out[name][row] = values[start : start + length]


def _row_group_spans(
    starts: np.ndarray, rows: list[tuple[int, int]], T: int
) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Group one file's windows into runs of row groups: windows that share a row group are read
    together, windows far apart are read separately, so no row group between them is decoded."""
    spans: list[tuple[int, int, list[tuple[int, int]]]] = []
    for row, start in sorted(rows, key=lambda r: r[1]):
        first = int(np.searchsorted(starts, start, side="right")) - 1
        last = int(np.searchsorted(starts, start + T, side="left")) - 1
        if spans and first <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last), [*spans[-1][2], (row, start)])
        else:
            spans.append((first, last, [(row, start)]))
    return spans


def column_numpy(table: pa.Table, name: str, meta: EpisodeMetadata) -> np.ndarray:
    """A column as one numpy array of (rows, ...): pixels (rows, C, H, W), fixed-size lists
    (rows, size), scalars (rows,); no Python object per row."""
    column = table.column(name)
    if pa.types.is_fixed_size_binary(column.type):
        size = column.type.byte_width
        parts = [_binary_numpy(c, size) for c in column.chunks]
    elif pa.types.is_fixed_size_list(column.type):
        size = column.type.list_size
        parts = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, size) for c in column.chunks]
    else:
        parts = [c.to_numpy(zero_copy_only=False) for c in column.chunks]
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return values.reshape(len(values), *meta.pixel_shape) if name == "pixels" else values


def _binary_numpy(chunk: pa.FixedSizeBinaryArray, size: int) -> np.ndarray:
    """(rows, size) uint8 view of a fixed-size binary chunk's data buffer (no nulls are written)."""
    data = np.frombuffer(chunk.buffers()[1], np.uint8)
    return data[chunk.offset * size : (chunk.offset + len(chunk)) * size].reshape(len(chunk), size)
