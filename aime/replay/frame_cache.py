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

Entries are written as temporary files, synced, and renamed into place, so the sampler actors of a
node can share one cache and never read half an entry; a damaged one (a crash, a full disk) is
deleted and decoded again. A reader that asks for a column an entry lacks first re-reads the entry
(another process may have added it), then rewrites it with the column. Past ``capacity_gb`` a filling
process, counting every process's entries, removes the oldest (by the time they were written) until
the cache is below nine tenths of it; never the one it just wrote, and a reader that still has one
mapped keeps its pages (POSIX unlink). Episode files are immutable once written; an entry's key is
the store, the file's path, the episode id and the file's size (``Window.identity``), so a store
re-created at the same path does not read an old episode's frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import resource
import struct
import threading
import time
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
TEMPORARY = ".tmp"
EVICT_TO = 0.9  # an eviction stops at this share of the capacity
STALE_TEMPORARY_SECONDS = 3600.0  # a temporary this old is a crashed writer's: removed on eviction


def open_map_budget() -> int:
    """Maps a process keeps open: each holds a file descriptor, so a quarter of the descriptor limit,
    after raising the soft limit to the hard one (a window whose map was closed reopens it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return 16384 if soft == resource.RLIM_INFINITY else max(64, min(16384, soft // 4))


class FrameCache:
    def __init__(self, directory: str | os.PathLike, capacity_gb: float = 16.0):
        if capacity_gb <= 0:
            raise ValueError(f"frame cache capacity must be > 0 GB, got {capacity_gb}")
        self.directory = Path(directory).expanduser().resolve()
        self.capacity_bytes = int(capacity_gb * 2**30)
        self.__setstate__(self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:  # travels to sampler actors without its open maps
        return {"directory": self.directory, "capacity_bytes": self.capacity_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory, self.capacity_bytes = state["directory"], state["capacity_bytes"]
        self._maps: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()  # the maps' order: a reader's threads may share one cache
        self.open_map_budget = open_map_budget()

    def columns(self, store: Any, path: str, identity: str, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The episode file's columns ``names`` as read-only (rows, ...) arrays in the stored dtypes
        (``pixels`` (rows, C, H, W) uint8), decoded from ``path`` in ``store`` on first use.
        ``identity`` tells the file from another at the same path (``Window.identity``)."""
        key = _entry_key(str(store.root), path, identity)
        with self._lock:
            entry = self._mapped(key)
            if entry is None or not set(names) <= entry.keys():
                self._maps.pop(key, None)  # another process may have added columns since this one mapped it
                entry = self._mapped(key)
                if entry is None or not set(names) <= entry.keys():
                    entry = self._fill(store, path, key, entry or {}, names)
        return {name: entry[name] for name in names}

    def fill(self, store: Any, files: Sequence[Any], names: Sequence[str], progress: bool = False) -> int:
        """Decode ``names`` of every episode file of ``files`` (EpisodeFile) now, not on first use;
        returns the cache's bytes on disk for them."""
        from tqdm import tqdm

        from aime.replay.windows import Window

        keys = set()
        for f in tqdm(files, desc="frame cache", unit="episode", disable=not progress):
            identity = Window(f.path, 0, f.meta.episode_id, stamp=str(f.size_bytes)).identity
            self.columns(store, f.path, identity, names)
            keys.add(_entry_key(str(store.root), f.path, identity) + SUFFIX)
        return sum(size for entry, size, _ in self._entries() if entry.name in keys)

    # ---- reading -------------------------------------------------------------------------------
    def _mapped(self, key: str) -> dict[str, np.ndarray] | None:
        cached = self._maps.get(key)
        if cached is not None:
            self._maps.move_to_end(key)
            return cached
        path = self.directory / (key + SUFFIX)
        try:
            entry = _views(np.memmap(path, mode="r", dtype=np.uint8))
        except FileNotFoundError:
            return None
        except ValueError as error:  # a damaged entry (a crash mid-write on another node, a full disk)
            log.warning("frame cache: %s; decoding the episode again", error)
            path.unlink(missing_ok=True)
            return None
        self._remember(key, entry)
        return entry

    def _remember(self, key: str, entry: dict[str, np.ndarray]) -> None:
        self._maps[key] = entry
        self._maps.move_to_end(key)
        while len(self._maps) > self.open_map_budget:
            self._maps.popitem(last=False)

    # ---- filling -------------------------------------------------------------------------------
    def _fill(
        self, store: Any, path: str, key: str, kept: dict[str, np.ndarray], names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Decode the ``names`` the entry lacks from the whole file, publish them with the ``kept``
        columns as one renamed file, and return its views (mapped before the rename, so no eviction
        in any process can take it from this caller)."""
        missing = [name for name in names if name not in kept]
        with store.fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            meta = check_schema(parquet.schema_arrow)
            table = parquet.read(columns=missing)
        columns = dict(kept) | {name: column_numpy(table, name, meta) for name in missing}
        for name, values in columns.items():
            if values.dtype.hasobject:
                raise ValueError(
                    f"frame cache: column {name} holds Python objects ({values.dtype}); not cached"
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{uuid.uuid4().hex}{TEMPORARY}"
        try:
            _write_entry(temporary, columns)
            entry = _views(np.memmap(temporary, mode="r", dtype=np.uint8))
            os.replace(temporary, self.directory / (key + SUFFIX))  # atomic: readers see all or none
        finally:
            temporary.unlink(missing_ok=True)  # only left when the write failed
        self._remember(key, entry)
        self._bound(keep=key + SUFFIX)
        return entry

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

    def _bound(self, keep: str) -> None:
        """Past the capacity, remove the oldest entries (any process's; not ``keep``, just written)
        until the cache holds nine tenths of it, and temporaries a crashed writer left an hour ago.
        Rescans the directory each time: every process's writes count, and a scan costs far less than
        decoding the episode that came before it."""
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        if total <= self.capacity_bytes:
            return
        target = EVICT_TO * self.capacity_bytes
        removed = 0
        for entry, size, _ in entries:
            if total <= target:
                break
            if entry.name == keep:
                continue
            entry.unlink(missing_ok=True)
            total -= size
            removed += 1
        for leftover in self.directory.glob("*" + TEMPORARY):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - leftover.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                    leftover.unlink()
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
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename publishes it
    return start + offset


def _views(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Each column of an entry file as a read-only view of its one memory map."""
    if len(raw) < len(MAGIC) + 8 or raw[: len(MAGIC)].tobytes() != MAGIC:
        raise ValueError(f"{getattr(raw, 'filename', 'frame cache entry')}: not a frame cache entry")
    where = getattr(raw, "filename", "frame cache entry")
    (length,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8].tobytes())
    if len(MAGIC) + 8 + length > len(raw):
        raise ValueError(f"{where}: truncated header")
    try:
        header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + length].tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{where}: unreadable header") from None
    start = -(-(len(MAGIC) + 8 + length) // ALIGN) * ALIGN
    out = {}
    for name, spec in header["columns"].items():
        dtype = np.dtype(spec["dtype"])
        if dtype.hasobject:
            raise ValueError(f"frame cache entry: column {name} has object dtype {dtype}")
        count = int(np.prod(spec["shape"], dtype=np.int64))
        end = start + spec["offset"] + count * dtype.itemsize
        if end > len(raw):
            raise ValueError(f"{where}: truncated ({len(raw)} bytes, column {name} ends at {end})")
        flat = raw[start + spec["offset"] : end]
        out[name] = flat.view(dtype).reshape(spec["shape"])
    return out


def _entry_key(root: str, path: str, identity: str) -> str:
    return hashlib.blake2b(f"{root}\0{path}\0{identity}".encode(), digest_size=12).hexdigest()
