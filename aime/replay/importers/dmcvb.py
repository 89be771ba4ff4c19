"""DMC Vision Benchmark (DMC-VB) TFRecord files -> decoded episodes, one record at a time.

DMC-VB (github.com/google-deepmind/dmc_vision_benchmark) is a TFDS/RLDS dataset: one
``tf.train.Example`` per episode in ``*.tfrecord-*`` shards, laid out as
``locomotion/<domain>_<task>/<policy level>/<distractor>/...`` (e.g. ``walker_walk/expert/none``).
Step features: ``steps/observation/pixels`` (64x64 RGB), the dm_control observation parts
(``steps/observation/orientations``...), ``steps/action``, ``steps/reward``, ``steps/discount``,
``steps/is_first``/``is_last``/``is_terminal``. The task, policy level and distractor setting are
read from the path; ``--task`` names the task when the path does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aime.replay.importers.files import SourceFile, list_files, open_input
from aime.replay.importers.rlds import DecodedEpisode, decode_episode
from aime.replay.importers.tasks import POLICY_LEVELS, task_from_path_part, task_spec
from aime.replay.importers.tfrecord import read_records

TFRECORD_MARK = ".tfrecord"


@dataclass(frozen=True)
class DmcvbImporter:
    """Reads DMC-VB episodes below ``root``; ``subsets`` keep only paths containing one of them."""

    root: str
    subsets: tuple[str, ...] = ()
    task: str | None = None  # overrides the task read from the path
    pixel_key: str = "pixels"
    float_dtype: str = "<f8"  # raw-bytes numbers (actions, states) are float64 in DMC-VB
    source: str = "dmcvb"

    def list_files(self) -> list[SourceFile]:
        files = list_files(self.root, self._wanted)
        unknown = [f.rel for f in files if self.describe(f)[0] is None]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ValueError(f"cannot tell the task of {unknown[0]}{more}; pass --task")
        return files

    def describe(self, file: SourceFile) -> tuple[str | None, dict[str, Any]]:
        """(task, metadata extras) of a file, from its path below the root."""
        parts = file.rel.split("/")
        extra: dict[str, Any] = {"source_file": file.rel}
        task = self.task
        for i, part in enumerate(parts):
            found = task_from_path_part(part)
            if found is None:
                continue
            task = task or found
            subset = [part]
            if i + 1 < len(parts) - 1 and parts[i + 1] in POLICY_LEVELS:
                extra["policy_level"] = parts[i + 1]
                subset.append(parts[i + 1])
                if i + 2 < len(parts) - 1:
                    extra["distractor"] = parts[i + 2]
                    subset.append(parts[i + 2])
            extra["subset"] = "/".join(subset)
            break
        return task, extra

    def read(self, file: SourceFile) -> Iterator[tuple[int, DecodedEpisode | str]]:
        """(record index, episode or the reason it was skipped), streaming one record at a time."""
        task, _ = self.describe(file)
        assert task is not None, file
        spec = task_spec(task)
        with open_input(file.path, self.root) as stream:
            for record in read_records(stream):
                if record.data is None:
                    yield record.index, str(record.error)
                    continue
                try:
                    yield (
                        record.index,
                        decode_episode(
                            record.data, spec, pixel_key=self.pixel_key, float_dtype=self.float_dtype
                        ),
                    )
                except ValueError as error:
                    yield record.index, str(error)

    def _wanted(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if TFRECORD_MARK not in name:
            return False
        padded = f"/{rel}/"
        return not self.subsets or any(f"/{s.strip('/')}/" in padded for s in self.subsets)
