"""Importing a dataset: source files in parallel Ray tasks, one episode in memory per task.

The driver lists the source files, skips those whose marker says they are already imported, and
keeps at most ``workers`` files in flight; each task streams its file (``importer.read`` yields one
decoded episode at a time), labels concepts, writes the episodes and finally the file's marker. A
record that cannot be read is reported with its file and index and skipped; a file whose task fails
outright is reported as one skipped record (index -1). ``import_file`` is a plain function: tests run
it in-process; ``run_import`` is the one place that makes it a Ray task.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm import tqdm

from aime.replay.importers.concepts import concept_names, label_concepts
from aime.replay.importers.files import SourceFile
from aime.replay.importers.rlds import DecodedEpisode
from aime.replay.importers.sink import EpisodeSink, FileReport, SkippedRecord, WriteSettings
from aime.replay.schema import EpisodeMetadata

log = logging.getLogger(__name__)


class Importer(Protocol):
    """A dataset format: ``DmcvbImporter``, ``NpzImporter``. Must pickle (it is shipped to tasks)."""

    @property
    def source(self) -> str: ...

    def list_files(self) -> list[SourceFile]: ...

    def describe(self, file: SourceFile) -> tuple[str | None, dict[str, Any]]: ...

    def read(self, file: SourceFile) -> Any: ...  # Iterator[tuple[int, DecodedEpisode | str]]


@dataclass
class ImportSummary:
    files: int = 0  # source files found
    imported_files: int = 0  # imported by this run
    already_imported: int = 0  # skipped: their marker says they were imported before
    episodes: int = 0
    steps: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    out: str = ""
    skipped: list[SkippedRecord] = field(default_factory=list)

    def add(self, report: FileReport) -> None:
        self.episodes += report.episodes
        self.steps += report.steps
        self.rows += report.rows
        self.bytes += report.bytes
        self.skipped += report.skipped

    def lines(self) -> list[str]:
        lines = [
            f"files           {self.files} ({self.imported_files} imported now,"
            f" {self.already_imported} already imported)",
            f"episodes        {self.episodes}",
            f"agent steps     {self.steps}  ({self.rows} rows)",
            f"bytes written   {self.bytes:,}",
            f"seconds         {self.seconds:.1f}",
            f"skipped records {len(self.skipped)}",
        ]
        lines += [f"  {s.file} record {s.record}: {s.reason}" for s in self.skipped]
        return lines + [f"replay root     {self.out}"]


def import_file(importer: Importer, file: SourceFile, settings: WriteSettings) -> FileReport:
    """Import every readable episode of ``file``, then write its marker; returns what was done."""
    sink = EpisodeSink(settings, importer.source, file)
    task, extra = importer.describe(file)
    assert task is not None, ("no task for", file.rel)
    report = FileReport(file=file.rel, size=file.size)
    for index, episode in importer.read(file):
        if isinstance(episode, str):
            log.warning("import: skipping %s record %d: %s", file.rel, index, episode)
            report.skipped.append(SkippedRecord(file.rel, index, episode))
            continue
        arrays, meta = _labelled(episode, task, importer.source, {**extra, "record": index})
        _, written = sink.write(index, arrays, meta)
        report.episodes += 1
        report.rows += len(arrays)
        report.steps += len(arrays) - 1
        report.bytes += written
    sink.write_marker(report)
    return report


def run_import(
    importer: Importer,
    settings: WriteSettings,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> ImportSummary:
    """Import all of ``importer``'s files into ``settings.out`` (Ray must be initialised)."""
    import ray

    start = time.monotonic()
    files = importer.list_files()
    summary = ImportSummary(files=len(files), out=settings.out)
    todo: deque[SourceFile] = deque()
    for file in files:
        marker = None if force else EpisodeSink(settings, importer.source, file).read_marker()
        if marker is not None and marker.size == file.size:
            summary.already_imported += 1
            summary.add(marker)
        else:
            todo.append(file)
    limit = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    remote_import = ray.remote(num_cpus=1, max_retries=1)(import_file)
    pending: dict[Any, SourceFile] = {}
    bar = tqdm(total=len(todo), unit="file", disable=not progress, dynamic_ncols=True)
    try:
        while todo or pending:
            while todo and len(pending) < limit:
                file = todo.popleft()
                pending[remote_import.remote(importer, file, settings)] = file
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                file = pending.pop(ref)
                try:
                    report = ray.get(ref)
                except ray.exceptions.RayError as error:
                    reason = f"file failed: {_cause(error)}"
                    log.warning("import: %s: %s", file.rel, reason)
                    summary.skipped.append(SkippedRecord(file.rel, -1, reason))
                else:
                    summary.imported_files += 1
                    summary.add(report)
                bar.update(1)
                bar.set_postfix(episodes=summary.episodes, skipped=len(summary.skipped))
    finally:
        bar.close()
    summary.seconds = time.monotonic() - start
    return summary


def _labelled(
    episode: DecodedEpisode, task: str, source: str, extra: dict[str, Any]
) -> tuple[Any, EpisodeMetadata]:
    arrays = episode.arrays
    arrays.concepts = label_concepts(task, episode.fields)
    C, H, W = arrays.pixels.shape[1:]
    meta = EpisodeMetadata(
        episode_id="",  # the sink names it
        task=task,
        seed=0,
        length=len(arrays),
        pixel_shape=(C, H, W),
        action_dim=arrays.action.shape[1],
        state_dim=arrays.state.shape[1],
        concepts=concept_names(task, set(episode.fields)),
        source=source,
        extra=extra,
    )
    return arrays, meta


def _cause(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error).splitlines()[0]
