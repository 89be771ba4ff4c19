"""Evaluation windows: a fixed, evenly spread set of (file, start) windows over held-out episodes.

Training samples windows at random; evaluation wants the same windows on every call, so a plan is a
plain list decided on the driver from the store listing alone, and actors read the windows it names.

    held-out EpisodeFiles --plan_windows--> [Window(path, start, episode_id)] x N
    Window ids --read_windows--> {obs uint8 (n, T, 3, S, S), action (n, T, A), is_first (n, T)}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aime.replay.schema import EpisodeMetadata, check_schema
from aime.replay.store import EpisodeFile, ReplayStore


@dataclass(frozen=True)
class Window:
    path: str  # the episode file, as the store lists it
    start: int  # first row
    episode_id: str


def plan_windows(files: Sequence[EpisodeFile], length: int, count: int) -> list[Window]:
    """``count`` windows of ``length`` rows, evenly spaced over every valid window of ``files``.

    Evenly spaced rather than random: every held-out episode contributes in proportion to its length
    and the plan is a function of the listing alone. Fewer windows come back when fewer exist.
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


def read_windows(store: ReplayStore, windows: Sequence[Window], length: int) -> dict[str, np.ndarray]:
    """The named windows as model inputs; each file is read once per call."""
    n = len(windows)
    by_file: dict[str, list[int]] = defaultdict(list)
    for row, window in enumerate(windows):
        by_file[window.path].append(row)
    out: dict[str, np.ndarray] = {}
    for path, rows in by_file.items():
        with store.fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            meta = check_schema(parquet.schema_arrow)
            table = parquet.read(columns=["pixels", "action", "is_first"])
        pixels, action, is_first = _columns(table, meta)
        for row in rows:
            span = slice(windows[row].start, windows[row].start + length)
            assert pixels[span].shape[0] == length, (path, windows[row].start, length, pixels.shape)
            if not out:
                out = {
                    "obs": np.empty((n, length, *pixels.shape[1:]), np.uint8),  # (n, T, 3, S, S)
                    "action": np.empty((n, length, action.shape[1]), np.float32),  # (n, T, A)
                    "is_first": np.empty((n, length), np.bool_),  # (n, T)
                }
            out["obs"][row] = pixels[span]
            out["action"][row] = action[span]
            out["is_first"][row] = is_first[span]
    return out


def _columns(table: pa.Table, meta: EpisodeMetadata) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pixels (L, 3, S, S) uint8, action (L, A) float32, is_first (L,) bool from one episode table."""
    pixels = table.column("pixels").combine_chunks()
    size = pixels.type.byte_width
    first, last = pixels.offset * size, (pixels.offset + len(pixels)) * size
    data = np.frombuffer(pixels.buffers()[1], np.uint8)[first:last]  # no nulls are ever written
    action = table.column("action").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return (
        data.reshape(len(pixels), *meta.pixel_shape),
        action.reshape(len(pixels), meta.action_dim).astype(np.float32),
        table.column("is_first").to_numpy().astype(np.bool_),
    )
