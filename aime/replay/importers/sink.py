"""Where imported episodes go: deterministic names, chunked Parquet files, and per-file markers.

A source file's episodes are named from its path below the import root and the record index, so a
re-run writes the same names (an interrupted file is simply rewritten). Names start with
``00000000-000000``, the zero of the run-id timestamp: the store's name order is age order, so
imported data counts as older than any collected run and is evicted first when the store is full.
When a source file is complete, ``_imported/<source>-<key>.json`` is written atomically (the store
lists only top-level ``*.parquet``, so markers are invisible to readers); a later import skips files
whose marker matches their size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from aime.replay.episode import EpisodeArrays, episode_table
from aime.replay.importers.files import SourceFile
from aime.replay.schema import EpisodeMetadata
from aime.replay.store import ReplayStore
from aime.storage import atomic_write_text

IMPORT_STAMP = "00000000-000000"
MARKER_DIR = "_imported"


@dataclass(frozen=True)
class WriteSettings:
    out: str  # replay root
    chunk_steps: int | None = None
    row_group_steps: int = 64
    compression: str = "zstd"


@dataclass(frozen=True)
class SkippedRecord:
    file: str
    record: int
    reason: str


@dataclass
class FileReport:
    """What importing one source file did (also the content of its marker)."""

    file: str
    size: int
    episodes: int = 0
    rows: int = 0
    steps: int = 0  # agent steps: rows minus each episode's final observation
    bytes: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> FileReport:
        data = json.loads(text)
        data["skipped"] = [SkippedRecord(**s) for s in data["skipped"]]
        return cls(**data)


def run_id_for(source: str, file: SourceFile) -> str:
    key = hashlib.blake2b(file.rel.encode(), digest_size=5).hexdigest()
    return f"{IMPORT_STAMP}-{source}-{key}"


class EpisodeSink:
    """Writes one source file's episodes into the store, then its marker."""

    def __init__(self, settings: WriteSettings, source: str, file: SourceFile):
        self.settings = settings
        self.store = ReplayStore(settings.out)
        self.run_id = run_id_for(source, file)
        self.marker = f"{self.store.path}/{MARKER_DIR}/{self.run_id}.json"

    def write(self, index: int, arrays: EpisodeArrays, meta: EpisodeMetadata) -> tuple[int, int]:
        """Episode ``index`` of the file, in chunks of ``chunk_steps`` rows; returns (files, bytes)."""
        episode_id = f"{self.run_id}-{index:06d}"
        meta = replace(meta, episode_id=episode_id, run_id=self.run_id)
        size = self.settings.chunk_steps or len(arrays)
        written = 0
        starts = range(0, len(arrays), size)
        for chunk_index, start in enumerate(starts):
            chunk = _rows(arrays, slice(start, start + size))
            table = episode_table(chunk, replace(meta, chunk_index=chunk_index))
            path = self.store.write(
                f"{episode_id}-{chunk_index:03d}",
                table,
                row_group_steps=self.settings.row_group_steps,
                compression=self.settings.compression,
            )
            written += self.store.fs.get_file_info(path).size
        return len(starts), written

    def read_marker(self) -> FileReport | None:
        try:
            with self.store.fs.open_input_stream(self.marker) as f:
                return FileReport.from_json(f.read().decode())
        except (FileNotFoundError, OSError, ValueError, TypeError, KeyError):
            return None

    def write_marker(self, report: FileReport) -> None:
        atomic_write_text(self.marker, report.to_json(), fs=self.store.fs)


def _rows(arrays: EpisodeArrays, rows: slice) -> EpisodeArrays:
    values: dict[str, Any] = {name: getattr(arrays, name)[rows] for name in arrays.__dataclass_fields__}
    values["step"] = np.arange(len(arrays), dtype=np.int32)[rows]
    return EpisodeArrays(**values)
