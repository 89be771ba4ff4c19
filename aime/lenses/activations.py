"""The activations dataset: what ``aime lenses extract`` writes and ``train`` / ``eval`` read.

    <dir>/activations.json           the manifest, written last (its presence marks a complete dataset)
    <dir>/{train,validation,test}/part-NNNNNN.parquet
        episode string, step int32, <activation> fixed_size_list<float32>[D] per activation,
        concept_<name> bool per concept

One row per agent step of an episode, encoded by the frozen world model (``WorldModel.encode``,
sample=False) over the whole episode. A split is a set of whole episodes (``split.py``). Every file is
written atomically; rows become arrays here (no Python object per row): ``to_lens_data``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from aime.lenses.fit import LensData
from aime.replay.schema import CONCEPT_PREFIX
from aime.storage import atomic_write, atomic_write_text, resolve_filesystem
from aime.storage.location import is_file, join, list_files, read_text

MANIFEST = "activations.json"
SPLITS = ("train", "validation", "test")
FORMAT = 1


@dataclass(frozen=True)
class SplitSummary:
    episodes: list[str]
    rows: int = 0
    positives: dict[str, int] = field(default_factory=dict)  # concept -> rows where it holds

    def positive_rate(self, concept: str) -> float:
        return self.positives.get(concept, 0) / max(1, self.rows)


@dataclass(frozen=True)
class Manifest:
    checkpoint: str  # the world model's checkpoint directory
    step: int
    config_hash: str  # aime.checkpoints.config_hash of that checkpoint
    task: str
    episodes_root: str
    activations: dict[str, int]  # name -> input dim
    concepts: list[str]  # without the concept_ prefix
    splits: dict[str, SplitSummary]
    held_out: list[str]  # the run's held-out episodes (HeldOutSplit.of(cfg)): all in test
    created_at: str
    skipped_files: list[str] = field(default_factory=list)  # unreadable files in the store, left out
    format: int = FORMAT

    def write(self, directory: str | Path) -> None:
        atomic_write_text(join(directory, MANIFEST), json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """The manifest of the dataset at ``directory`` (a path or a shared-storage URI)."""
        path = join(directory, MANIFEST)
        if not is_file(path):
            raise FileNotFoundError(
                f"{directory} is not an activations dataset (no {MANIFEST}): "
                "make one with `aime lenses extract <run_dir> --out DIR`"
            )
        data = json.loads(read_text(path))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: activations format {data.get('format')}, this aime reads {FORMAT}")
        data["splits"] = {name: SplitSummary(**s) for name, s in data["splits"].items()}
        return cls(**data)


def activation_table(
    episode: str, step: np.ndarray, activations: dict[str, np.ndarray], concepts: dict[str, np.ndarray]
) -> pa.Table:
    """One episode's rows: step (T,), activations {name: (T, D)}, concepts {name: (T,) bool}."""
    T = len(step)
    columns: dict[str, pa.Array] = {
        "episode": pa.array([episode] * T, pa.string()),
        "step": pa.array(np.asarray(step, np.int32)),
    }
    for name, value in sorted(activations.items()):
        value = np.ascontiguousarray(value, np.float32)
        assert value.shape[0] == T, (name, value.shape, T)
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1)), value.shape[1])
    for name, value in sorted(concepts.items()):
        columns[CONCEPT_PREFIX + name] = pa.array(np.asarray(value, bool))
    return pa.table(columns)


def write_part(directory: str | Path, split: str, block: int, table: pa.Table) -> str:
    path = join(directory, split, f"part-{block:06d}.parquet")
    return atomic_write(path, lambda stream: pq.write_table(table, stream, compression="zstd"))


def to_lens_data(table: pa.Table, activations: list[str], concepts: list[str]) -> LensData:
    """Columns of a table (or a Ray Data pyarrow batch) as tensors."""
    values = {name: torch.from_numpy(fixed_size_numpy(table.column(name))) for name in activations}
    flags = [table.column(CONCEPT_PREFIX + c).to_numpy(zero_copy_only=False) for c in concepts]
    matrix = np.stack(flags, axis=1) if flags else np.zeros((table.num_rows, 0), bool)
    return LensData(values, torch.from_numpy(matrix.astype(bool)), list(concepts))


def read_split(directory: str | Path, split: str, activations: list[str], concepts: list[str]) -> LensData:
    """A whole split in memory (the driver's scoring; workers stream their shard instead)."""
    columns = [*activations, *(CONCEPT_PREFIX + c for c in concepts)]
    files = [
        f for f in list_files(join(directory, split), ".parquet") if f.rsplit("/", 1)[-1].startswith("part-")
    ]
    if not files:
        return to_lens_data(_empty(directory, activations, concepts), activations, concepts)
    table = pa.concat_tables([_read_part(f, columns) for f in files])
    return to_lens_data(table, activations, concepts)


def fixed_size_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed_size_list<float32>[D] column as one (rows, D) float32 array."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    size = column.type.list_size
    parts = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, size) for c in chunks]
    if not parts:
        return np.zeros((0, size), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _read_part(location: str, columns: list[str]) -> pa.Table:
    fs, path = resolve_filesystem(location)
    return pq.read_table(path, columns=columns, filesystem=fs)


def _empty(directory: str | Path, activations: list[str], concepts: list[str]) -> pa.Table:
    dims = Manifest.read(directory).activations
    return activation_table(
        "",
        np.zeros(0, np.int32),
        {a: np.zeros((0, dims[a]), np.float32) for a in activations},
        {c: np.zeros(0, bool) for c in concepts},
    ).select([*activations, *(CONCEPT_PREFIX + c for c in concepts)])
