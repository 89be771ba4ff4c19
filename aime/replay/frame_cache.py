"""FrameCache: episodes' columns decoded once onto node-local disk, read by memory map.

    episode file (Parquet, compressed) --first read, every row--> <dir>/<key>/<column>.npy
    a window --np.load(mmap_mode="r")[start : start + T]--> a copy of exactly its T rows

Without the cache a window read decodes every row group it overlaps (64-128 frames for a window of
32, at the default 64 rows per group). With it a window copies its own T rows out of the page cache,
and the Parquet file is not opened at all. The price is the first read of each episode (all its
rows, once per node) and the disk: raw pixels take about 12 KB per 64x64 frame where the store's
zstd Parquet takes about 1.7 KB. Memory stays flat in store size: the maps are file pages the kernel
can drop, not the process's own memory.

Entries are written as temporary files and renamed into place, so the sampler actors of a node can
share one cache and never read half an entry. Past ``capacity_gb`` a filling process removes the
oldest entries (by the time they were filled) until the cache is below nine tenths of it; a reader
that still has one mapped keeps its pages (POSIX unlink). Episode files are immutable once written,
so an entry never goes stale: its key is the store, the file and the episode id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
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

OPEN_MAPS = 512  # memory maps a process keeps open (each holds a file descriptor)
EVICT_TO = 0.9  # an eviction stops at this share of the capacity


class FrameCache:
    def __init__(self, directory: str | os.PathLike, capacity_gb: float = 16.0):
        if capacity_gb <= 0:
            raise ValueError(f"frame cache capacity must be > 0 GB, got {capacity_gb}")
        self.directory = Path(directory)
        self.capacity_bytes = int(capacity_gb * 2**30)
        self._maps: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._filled_bytes: int | None = None  # this process's running estimate; rescanned on eviction

    def __getstate__(self) -> dict[str, Any]:  # travels to sampler actors without its open maps
        return {"directory": self.directory, "capacity_bytes": self.capacity_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory, self.capacity_bytes = state["directory"], state["capacity_bytes"]
        self._maps, self._filled_bytes = OrderedDict(), None

    def columns(self, store: Any, path: str, episode_id: str, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The episode file's columns ``names`` as read-only (rows, ...) arrays in the stored dtypes
        (``pixels`` (rows, C, H, W) uint8), decoded from ``path`` in ``store`` on first use."""
        key = _entry_key(str(store.root), path, episode_id)
        out = {name: self._mapped(key, name) for name in names}
        missing = [name for name, array in out.items() if array is None]
        if missing:
            self._fill(store, path, key, missing)
            out |= {name: self._mapped(key, name) for name in missing}
        assert all(a is not None for a in out.values()), (path, missing)
        return out  # type: ignore[return-value]

    def fill(self, store: Any, files: Sequence[Any], names: Sequence[str], progress: bool = False) -> int:
        """Decode ``names`` of every episode file of ``files`` (EpisodeFile) now, not on first use;
        returns the cache's bytes on disk for them."""
        from tqdm import tqdm

        for f in tqdm(files, desc="frame cache", unit="episode", disable=not progress):
            self.columns(store, f.path, f.meta.episode_id, names)
        keys = {_entry_key(str(store.root), f.path, f.meta.episode_id) for f in files}
        return sum(size for entry, size, _ in self._entries() if entry.name in keys)

    # ---- reading -------------------------------------------------------------------------------
    def _mapped(self, key: str, name: str) -> np.ndarray | None:
        cached = self._maps.get((key, name))
        if cached is not None:
            self._maps.move_to_end((key, name))
            return cached
        try:
            array = np.load(self._file(key, name), mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        self._maps[(key, name)] = array
        if len(self._maps) > OPEN_MAPS:
            self._maps.popitem(last=False)
        return array

    def _file(self, key: str, name: str) -> Path:
        return self.directory / key / (name.replace("/", "__") + ".npy")

    # ---- filling -------------------------------------------------------------------------------
    def _fill(self, store: Any, path: str, key: str, names: list[str]) -> None:
        """Decode ``names`` of the whole file once and publish each as one renamed file."""
        with store.fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            meta = check_schema(parquet.schema_arrow)
            table = parquet.read(columns=names)
        entry = self.directory / key
        entry.mkdir(parents=True, exist_ok=True)
        written = 0
        for name in names:
            values = column_numpy(table, name, meta)
            temporary = entry / f".{uuid.uuid4().hex}.tmp.npy"
            np.save(temporary, np.ascontiguousarray(values), allow_pickle=False)
            os.replace(temporary, self._file(key, name))  # atomic: a reader sees all of it or none
            written += values.nbytes
        self._account(written)

    def _account(self, written: int) -> None:
        if self._filled_bytes is None:
            self._filled_bytes = sum(size for _, size, _ in self._entries())
        else:
            self._filled_bytes += written
        if self._filled_bytes > self.capacity_bytes:
            self._evict()

    def _entries(self) -> list[tuple[Path, int, float]]:
        """(entry, bytes, filled at) of every entry in the directory (any process's)."""
        found = []
        for entry in self.directory.iterdir() if self.directory.exists() else ():
            try:
                files = list(entry.iterdir())
                found.append((entry, sum(f.stat().st_size for f in files), entry.stat().st_mtime))
            except (FileNotFoundError, NotADirectoryError):  # another process removed it meanwhile
                continue
        return found

    def _evict(self) -> None:
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        target = EVICT_TO * self.capacity_bytes
        removed = 0
        for entry, size, _ in entries:
            if total <= target:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            removed += 1
        self._maps.clear()  # maps of removed entries stay valid, but a reopen sees what is left
        self._filled_bytes = total
        log.info("frame cache: removed %d oldest entries, %.1f GB left", removed, total / 2**30)


def _entry_key(root: str, path: str, episode_id: str) -> str:
    return hashlib.blake2b(f"{root}\0{path}\0{episode_id}".encode(), digest_size=12).hexdigest()
