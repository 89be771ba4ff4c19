"""The replay store: a directory (local or any pyarrow filesystem URI) of episode Parquet files.

Files are written through ``aime.storage.atomic_write`` (a temporary dot-name renamed into place, or
an object-store upload that becomes visible only when complete), and readers list only ``*.parquet``
names without a leading dot, so they never see a half-written file.
Files are ordered by name; names start with the run id (a UTC timestamp), so name order is age order
and eviction removes the oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from aime.replay.schema import FILE_SUFFIX, EpisodeMetadata, check_schema
from aime.storage import atomic_write, resolve_filesystem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeFile:
    """One readable episode file, as the index keeps it: no frames, a few numbers."""

    path: str
    name: str
    num_rows: int
    size_bytes: int
    row_group_starts: np.ndarray  # (G + 1,) cumulative row offsets
    meta: EpisodeMetadata


class ReplayStore:
    def __init__(self, root: str | Path):
        root = str(root)
        self.fs, self.path = resolve_filesystem(root)
        self.root = root
        self._known: dict[str, EpisodeFile] = {}
        self._bad: set[tuple[str, int]] = set()

    # ---- writing ---------------------------------------------------------------------------
    def write(
        self,
        name: str,
        table: pa.Table,
        *,
        row_group_steps: int = 64,
        compression: str = "zstd",
        compression_level: int | None = None,
    ) -> str:
        """Write ``table`` as ``<root>/<name>.parquet`` atomically; returns the final path."""
        return atomic_write(
            f"{self.path}/{name}{FILE_SUFFIX}",
            lambda sink: pq.write_table(
                table,
                sink,
                row_group_size=row_group_steps,
                compression=compression,
                compression_level=compression_level,
                use_dictionary=["episode_id"],
                write_statistics=False,
            ),
            fs=self.fs,
        )

    # ---- reading ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the store's folder (or object-store prefix) exists; an empty store exists."""
        return bool(self.fs.get_file_info(self.path).type == pafs.FileType.Directory)

    def list_names(self) -> list[str]:
        """Paths of the complete episode files, oldest first. Temporary files are not listed."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except FileNotFoundError:
            return []
        paths = [
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(FILE_SUFFIX)
            and not i.base_name.startswith(".")
        ]
        return sorted(paths, key=lambda p: p.rsplit("/", 1)[-1])

    def scan(self) -> list[EpisodeFile]:
        """The readable episodes, oldest first. Reads only new files' footers; warns once per bad file."""
        paths = self.list_names()
        present = set(paths)
        self._known = {p: e for p, e in self._known.items() if p in present}
        infos = {i.path: i for i in self.fs.get_file_info([p for p in paths if p not in self._known])}
        for path, info in infos.items():
            if (path, info.size) in self._bad:
                continue
            entry = self._read_footer(path, info.size)
            if entry is None:
                self._bad.add((path, info.size))
            else:
                self._known[path] = entry
        return [self._known[p] for p in paths if p in self._known]

    @property
    def skipped(self) -> list[str]:
        return sorted(path for path, _ in self._bad)

    def open(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open_input_file(path))

    def _read_footer(self, path: str, size: int) -> EpisodeFile | None:
        try:
            with self.fs.open_input_file(path) as f:
                metadata = pq.read_metadata(f)
            meta = check_schema(metadata.schema.to_arrow_schema())
        except (OSError, ValueError, pa.ArrowException) as error:
            log.warning("replay: skipping %s: %s", path, error)
            return None
        counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return EpisodeFile(
            path=path,
            name=path.rsplit("/", 1)[-1][: -len(FILE_SUFFIX)],
            num_rows=metadata.num_rows,
            size_bytes=size,
            row_group_starts=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            meta=meta,
        )

    # ---- capacity --------------------------------------------------------------------------
    def evict(self, capacity_steps: int) -> list[str]:
        """Delete the oldest episodes until at most ``capacity_steps`` rows remain."""
        episodes = self.scan()
        total = sum(e.num_rows for e in episodes)
        removed = []
        for episode in episodes:
            if total <= capacity_steps:
                break
            if self._delete(episode.path):
                total -= episode.num_rows
                removed.append(episode.path)
        return removed

    def _delete(self, path: str) -> bool:
        """Whether ``path`` is gone: deleted now, or already (another evictor got there first). A
        failed delete is reported and not counted, so the next-oldest episode goes instead."""
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return True
        except OSError as error:
            log.warning("replay: could not evict %s (%s); it stays in the store", path, error)
            return False
        return True


def within_capacity(episodes: list[EpisodeFile], capacity_steps: int) -> list[EpisodeFile]:
    """The newest episodes whose rows fit in ``capacity_steps`` (readers' view of eviction)."""
    kept: list[EpisodeFile] = []
    total = 0
    for episode in reversed(episodes):
        if total + episode.num_rows > capacity_steps and kept:
            break
        kept.append(episode)
        total += episode.num_rows
    return kept[::-1]


@dataclass(frozen=True)
class Listing:
    """A store's readable episodes for one reader, and the files it skipped (named, not fatal)."""

    root: str
    files: list[EpisodeFile]
    skipped: list[str]  # unreadable: truncated, not Parquet, empty, or not an episode file


def checkpoint_episodes(replay_root: str | None, override: str | None, owner: str) -> Listing:
    """The episodes a checkpoint's consumers (eval, lenses) read: ``override`` (--episodes) or the
    run's replay.root; an error saying what to pass when there is none or it holds none."""
    root = override or replay_root
    if not root:
        raise ValueError(f"{owner}/config.yaml names no replay.root: pass --episodes DIR")
    store = ReplayStore(root)
    files = store.scan()
    if not files:
        raise ValueError(f"no episodes in {root}: collect some (aime collect) or pass --episodes DIR")
    return Listing(root, files, store.skipped)
