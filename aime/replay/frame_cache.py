"""FrameCache: episodes' columns decoded once onto node-local disk, read by memory map.

    episode file (Parquet, compressed) --first read, every row--> <dir>/<key>.frames (one file per episode)
    a window --one memory map per episode, a view per column--> a copy of exactly its T rows

Without the cache a window read decodes every row group it overlaps (64-128 frames for a window of
32, at the default 64 rows per group). With it a window copies its own T rows out of the page cache,
and the Parquet file is not opened at all. The price is the first read of each episode (all its
rows, once per node) and the disk: raw pixels take about 12 KB per 64x64 frame where the store's
zstd Parquet takes about 1.7 KB. Memory stays flat in store size: the maps are file pages the kernel
can drop, not the process's own memory.

An entry is one file: an 8-byte magic, the length of a JSON header, the header (each column's dtype,
shape and offset) and the columns' raw bytes, 64-byte aligned. One file per episode keeps one map
(one file descriptor) per episode however many columns a reader takes: reopening maps was the cost
once a store outgrew the open-map budget (six per episode at 2,000 episodes). Nothing is unpickled.

Entries are written as temporary files and renamed into place, so the sampler actors of a node can
share one cache and never read half an entry; a reader that asks for a column an entry lacks rewrites
the entry with it. Past ``capacity_gb`` a filling process removes the oldest entries (by the time they
were written) until the cache is below nine tenths of it; a reader that still has one mapped keeps its
pages (POSIX unlink). Episode files are immutable once written, so an entry never goes stale: its key
is the store, the file and the episode id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import struct
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from aime.replay.schema import check_schema
from aime.replay.windows import column_numpy

log = logging.getLogger(__name__)

MAGIC = b"AIMEFC1\n"
ALIGN = 64
SUFFIX = ".frames"
EVICT_TO = 0.9  # an eviction stops at this share of the capacity


def open_map_budget() -> int:
    """Maps a process keeps open: each holds a file descriptor, so a quarter of the soft limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, min(16384, soft // 4)) if soft != resource.RLIM_INFINITY else 16384


class FrameCache:
    def __init__(self, directory: str | os.PathLike, capacity_gb: float = 16.0):
        if capacity_gb <= 0:
            raise ValueError(f"frame cache capacity must be > 0 GB, got {capacity_gb}")
        self.directory = Path(directory)
        self.capacity_bytes = int(capacity_gb * 2**30)
        self.__setstate__(self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:  # travels to sampler actors without its open maps
        return {"directory": self.directory, "capacity_bytes": self.capacity_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory, self.capacity_bytes = state["directory"], state["capacity_bytes"]
        self._maps: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._budget = open_map_budget()
        self._filled_bytes: int | None = None  # this process's running estimate; rescanned on eviction

    def columns(self, store: Any, path: str, episode_id: str, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The episode file's columns ``names`` as read-only (rows, ...) arrays in the stored dtypes
        (``pixels`` (rows, C, H, W) uint8), decoded from ``path`` in ``store`` on first use."""
        key = _entry_key(str(store.root), path, episode_id)
        entry = self._mapped(key)
        if entry is None or not set(names) <= entry.keys():
            self._fill(store, path, key, entry or {}, [n for n in names if entry is None or n not in entry])
            entry = self._mapped(key)
            assert entry is not None and set(names) <= entry.keys(), (path, names)
        return {name: entry[name] for name in names}

    def fill(self, store: Any, files: Sequence[Any], names: Sequence[str], progress: bool = False) -> int:
        """Decode ``names`` of every episode file of ``files`` (EpisodeFile) now, not on first use;
        returns the cache's bytes on disk for them."""
        from tqdm import tqdm

        for f in tqdm(files, desc="frame cache", unit="episode", disable=not progress):
            self.columns(store, f.path, f.meta.episode_id, names)
        keys = {_entry_key(str(store.root), f.path, f.meta.episode_id) + SUFFIX for f in files}
        return sum(size for entry, size, _ in self._entries() if entry.name in keys)

    # ---- reading -------------------------------------------------------------------------------
    def _mapped(self, key: str) -> dict[str, np.ndarray] | None:
        cached = self._maps.get(key)
        if cached is not None:
            self._maps.move_to_end(key)
            return cached
        try:
            raw = np.memmap(self.directory / (key + SUFFIX), mode="r", dtype=np.uint8)
        except FileNotFoundError:
            return None
        entry = _views(raw)
        self._maps[key] = entry
        if len(self._maps) > self._budget:
            self._maps.popitem(last=False)
        return entry

    # ---- filling -------------------------------------------------------------------------------
    def _fill(self, store: Any, path: str, key: str, kept: dict[str, np.ndarray], names: list[str]) -> None:
        """Decode ``names`` of the whole file once and publish them, with the ``kept`` columns of the
        entry so far, as one renamed file."""
        with store.fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            meta = check_schema(parquet.schema_arrow)
            table = parquet.read(columns=names)
        columns = dict(kept) | {name: np.ascontiguousarray(column_numpy(table, name, meta)) for name in names}
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{uuid.uuid4().hex}.tmp"
        written = _write_entry(temporary, columns)
        os.replace(temporary, self.directory / (key + SUFFIX))  # atomic: readers see all of it or none
        self._maps.pop(key, None)
        self._account(written)

    def _account(self, written: int) -> None:
        if self._filled_bytes is None:
            self._filled_bytes = sum(size for _, size, _ in self._entries())
        else:
            self._filled_bytes += written
        if self._filled_bytes > self.capacity_bytes:
            self._evict()

    def _entries(self) -> list[tuple[Path, int, float]]:
        """(entry, bytes, written at) of every entry in the directory (any process's)."""
        found = []
        for entry in self.directory.glob("*" + SUFFIX):
            try:
                stat = entry.stat()
            except FileNotFoundError:  # another process removed it meanwhile
                continue
            found.append((entry, stat.st_size, stat.st_mtime))
        return found

    def _evict(self) -> None:
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        target = EVICT_TO * self.capacity_bytes
        removed = 0
        for entry, size, _ in entries:
            if total <= target:
                break
            entry.unlink(missing_ok=True)
            total -= size
            removed += 1
        self._maps.clear()  # maps of removed entries stay valid, but a reopen sees what is left
        self._filled_bytes = total
        log.info("frame cache: removed %d oldest entries, %.1f GB left", removed, total / 2**30)


def _write_entry(path: Path, columns: dict[str, np.ndarray]) -> int:
    """One entry file: MAGIC, the header's length, the JSON header, then each column aligned."""
    layout: dict[str, dict[str, Any]] = {}
    offsets: dict[str, int] = {}
    offset = 0
    for name, array in columns.items():
        offsets[name] = offset
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += -(-array.nbytes // ALIGN) * ALIGN
    header = json.dumps({"columns": layout}).encode()
    start = -(-(len(MAGIC) + 8 + len(header)) // ALIGN) * ALIGN
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for name, array in columns.items():
            f.seek(start + offsets[name])
            f.write(np.ascontiguousarray(array).tobytes())
        f.truncate(start + offset)
    return start + offset


def _views(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Each column of an entry file as a read-only view of its one memory map."""
    if raw[: len(MAGIC)].tobytes() != MAGIC:
        raise ValueError(f"{getattr(raw, 'filename', 'frame cache entry')}: not a frame cache entry")
    (length,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8].tobytes())
    header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + length].tobytes())
    start = -(-(len(MAGIC) + 8 + length) // ALIGN) * ALIGN
    out = {}
    for name, spec in header["columns"].items():
        dtype = np.dtype(spec["dtype"])
        if dtype.hasobject:
            raise ValueError(f"frame cache entry: column {name} has object dtype {dtype}")
        count = int(np.prod(spec["shape"], dtype=np.int64))
        flat = raw[start + spec["offset"] : start + spec["offset"] + count * dtype.itemsize]
        out[name] = flat.view(dtype).reshape(spec["shape"])
    return out


def _entry_key(root: str, path: str, episode_id: str) -> str:
    return hashlib.blake2b(f"{root}\0{path}\0{episode_id}".encode(), digest_size=12).hexdigest()
