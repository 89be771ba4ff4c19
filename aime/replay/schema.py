"""The replay store's on-disk format: one Parquet file per episode (or per chunk of a long one).

Row ``t`` of a file follows the RLDS convention: ``pixels[t]`` and ``state[t]`` are the observation,
``action[t]`` the action taken after seeing it, ``reward[t]`` and ``discount[t]`` what that action
earned. The last row (``is_last``) is the final observation: its action and reward are zero.

Pixels are stored raw, channels first (``CHW``), as one ``fixed_size_binary`` value per frame: a
window read is a zero-copy view of the decoded column. Not ``fixed_size_list<uint8>``: Parquet has no
8-bit integer, so a list stores every pixel as an INT32 with list levels; measured on cheetah-run
frames, zstd then reaches 4.55x instead of 7.26x and decoding is 6x slower
(``benchmarks/pixel_codec.py``, which also compares PNG: 7.72x but 9x slower to encode and decode).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 2
METADATA_KEY = b"aime"
CONCEPT_PREFIX = "concept_"
FILE_SUFFIX = ".parquet"


@dataclass(frozen=True)
class EpisodeMetadata:
    """What every episode file says about itself (Parquet key-value metadata ``aime``)."""

    episode_id: str
    task: str
    seed: int
    length: int  # rows in this file
    pixel_shape: tuple[int, int, int]  # (C, H, W)
    action_dim: int
    state_dim: int
    concepts: tuple[str, ...]
    actor_id: int = -1
    policy_version: int = 0
    chunk_index: int = 0
    episode_return: float = 0.0
    run_id: str = ""
    source: str = "aime.collect"
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    pixel_layout: str = "CHW"

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EpisodeMetadata:
        data = json.loads(raw)
        data["pixel_shape"] = tuple(data["pixel_shape"])
        data["concepts"] = tuple(data["concepts"])
        return cls(**data)


def episode_schema(meta: EpisodeMetadata) -> pa.Schema:
    schema = _columns(meta.pixel_shape, meta.action_dim, meta.state_dim, meta.concepts)
    return schema.with_metadata({METADATA_KEY: meta.to_bytes()})


@functools.lru_cache(maxsize=64)
def _columns(
    pixel_shape: tuple[int, int, int], action_dim: int, state_dim: int, concepts: tuple[str, ...]
) -> pa.Schema:
    """The episode schema's columns (no metadata); cached: every window read checks a file against it."""
    c, h, w = pixel_shape
    fields = [
        pa.field("episode_id", pa.string()),
        pa.field("step", pa.int32()),
        pa.field("pixels", pa.binary(c * h * w)),
        pa.field("action", pa.list_(pa.float32(), action_dim)),
        pa.field("reward", pa.float32()),
        pa.field("discount", pa.float32()),
        pa.field("is_first", pa.bool_()),
        pa.field("is_last", pa.bool_()),
        pa.field("is_terminal", pa.bool_()),
        pa.field("state", pa.list_(pa.float32(), state_dim)),
        pa.field("policy_version", pa.int32()),
    ]
    fields += [pa.field(CONCEPT_PREFIX + name, pa.bool_()) for name in concepts]
    return pa.schema(fields)


def check_schema(schema: pa.Schema) -> EpisodeMetadata:
    """The file's metadata if ``schema`` is a valid episode schema; ValueError says what is wrong."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError("no 'aime' metadata: not an aime episode file")
    meta = EpisodeMetadata.from_bytes(raw)
    if meta.schema_version != SCHEMA_VERSION:
        raise ValueError(f"schema version {meta.schema_version}, this reader knows {SCHEMA_VERSION}")
    expected = _columns(meta.pixel_shape, meta.action_dim, meta.state_dim, meta.concepts)
    actual = schema.remove_metadata()
    if not actual.equals(expected):
        missing = [
            f.name for f in expected if actual.get_field_index(f.name) < 0 or actual.field(f.name) != f
        ]
        raise ValueError(f"columns differ from the episode schema: {missing or 'extra columns'}")
    return meta
