"""Test and benchmark data for the importers (nothing here runs in an import): DMC-VB-like TFRecord
files and Dreamer-style npz episodes, and the protobuf encoders that write them.

Written with the encoders below and ``tfrecord.frame_record``,
in the encodings TFDS uses: PNG or zlib-compressed raw pixels, float lists or (zlib-compressed)
float64 bytes for numbers. Episode ``index`` depends only on ``(seed, index)``.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from aime.replay.importers.protobuf import Example, SequenceExample
from aime.replay.importers.tasks import ACTION_DIMS, STATE_SIZES
from aime.replay.importers.tfrecord import frame_record
from aime.replay.synthetic import synthetic_frames


def rlds_episode(
    index: int, *, task: str, steps: int, image_size: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """One episode in RLDS alignment: ``pixels`` (T, H, W, 3), ``action`` (T, A) float64 (last zero)..."""
    domain = task.split("-", 1)[0]
    rng = np.random.default_rng([seed, index])
    frames, _ = synthetic_frames(rng, steps, image_size)
    action = rng.uniform(-1, 1, (steps, ACTION_DIMS[domain]))
    reward = rng.uniform(0, 1, steps)
    action[-1], reward[-1] = 0.0, 0.0
    flags = np.zeros((3, steps), np.int64)
    flags[0, 0], flags[1, -1] = 1, 1
    episode = {
        "pixels": np.ascontiguousarray(frames.transpose(0, 2, 3, 1)),
        "action": action,
        "reward": reward,
        "discount": np.ones(steps),
        "is_first": flags[0],
        "is_last": flags[1],
        "is_terminal": flags[2],
    }
    for key, size in STATE_SIZES[domain].items():
        episode[f"observation/{key}"] = rng.normal(0, 0.3, (steps, size))
    return episode


def encode_record(
    episode: dict[str, np.ndarray], *, pixels: str = "png", numbers: str = "float", sequence: bool = False
) -> bytes:
    """``pixels``: png | zlib | raw; ``numbers``: float (float32 list) | bytes | zlib (float64 per step)."""
    steps: dict[str, list[Any]] = {}  # key -> one value per step
    for key, value in episode.items():
        if key == "pixels":
            steps["observation/pixels"] = [[_encode_frame(frame, pixels)] for frame in value]
        elif key.startswith("is_"):
            steps[key] = [np.array([v]) for v in value]
        else:
            rows = value.reshape(len(value), -1)
            steps[key] = [_encode_numbers(row, numbers) for row in rows]
    if sequence:
        return encode_sequence_example({}, {f"steps/{k}": v for k, v in steps.items()})
    flat: dict[str, Any] = {}
    for key, values in steps.items():
        if isinstance(values[0], list):
            flat[f"steps/{key}"] = [item for value in values for item in value]
        else:
            flat[f"steps/{key}"] = np.concatenate(values)
    return encode_example(flat)


def write_tfrecord(path: str | Path, records: Iterable[bytes]) -> int:
    """Write framed records; returns the file size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for record in records:
            f.write(frame_record(record))
    return path.stat().st_size


def write_dmcvb_subset(
    root: str | Path,
    *,
    task: str = "cheetah-run",
    policy_level: str = "expert",
    distractor: str = "none",
    files: int = 2,
    episodes_per_file: int = 2,
    steps: int = 11,
    image_size: int = 16,
    seed: int = 0,
    **encoding: Any,
) -> list[Path]:
    """``files`` shards under ``locomotion/<domain>_<task>/<policy>/<distractor>/`` as TFDS names them."""
    folder = Path(root) / "locomotion" / task.replace("-", "_") / policy_level / distractor
    paths = []
    for shard in range(files):
        path = folder / f"dmc_vb-train.tfrecord-{shard:05d}-of-{files:05d}"
        indices = range(shard * episodes_per_file, (shard + 1) * episodes_per_file)
        episodes = (
            rlds_episode(i, task=task, steps=steps, image_size=image_size, seed=seed) for i in indices
        )
        write_tfrecord(path, (encode_record(episode, **encoding) for episode in episodes))
        paths.append(path)
    return paths


def dreamer_arrays(episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An RLDS episode in Dreamer's npz layout: action[t] led to image[t], reward[t] came with it."""
    action, reward = episode["action"], episode["reward"]
    out = {
        "image": episode["pixels"],
        "action": np.concatenate([np.zeros((1, action.shape[1])), action[:-1]]).astype(np.float32),
        "reward": np.concatenate([[0.0], reward[:-1]]).astype(np.float32),
        "is_first": episode["is_first"].astype(bool),
        "is_last": episode["is_last"].astype(bool),
        "is_terminal": episode["is_terminal"].astype(bool),
    }
    for key, value in episode.items():
        if key.startswith("observation/"):
            out[key.removeprefix("observation/")] = value.astype(np.float32)
    return out


def _encode_frame(frame: np.ndarray, how: str) -> bytes:
    if how == "png":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        return buffer.getvalue()
    raw = np.ascontiguousarray(frame).tobytes()
    return zlib.compress(raw) if how == "zlib" else raw


def _encode_numbers(row: np.ndarray, how: str) -> Any:
    if how == "float":
        return row.astype(np.float32)
    raw = row.astype("<f8").tobytes()
    return [zlib.compress(raw) if how == "zlib" else raw]


# ---- protobuf encoders (the import path only decodes; these write test and benchmark data) ----------
def encode_example(features: dict[str, Any]) -> bytes:
    """A ``tf.train.Example``: values are lists of bytes, float arrays or integer arrays."""
    example = Example()
    for name, value in features.items():
        _fill(example.features.feature[name], value)
    return bytes(example.SerializeToString())


def encode_sequence_example(context: dict[str, Any], lists: dict[str, list[Any]]) -> bytes:
    """A ``tf.train.SequenceExample``: ``lists`` maps a name to one value per step."""
    sequence = SequenceExample()
    for name, value in context.items():
        _fill(sequence.context.feature[name], value)
    for name, steps in lists.items():
        target = sequence.feature_lists.feature_list[name]
        for value in steps:
            _fill(target.feature.add(), value)
    return bytes(sequence.SerializeToString())


def _fill(feature: Any, value: Any) -> None:
    """One Feature from a list of bytes (bytes_list), a float array (float_list) or integers."""
    if isinstance(value, list):
        feature.bytes_list.value.extend(bytes(v) for v in value)
        return
    array = np.asarray(value)
    if array.dtype.kind == "f":
        feature.float_list.value.extend(array.astype(np.float32).ravel().tolist())
    else:
        feature.int64_list.value.extend(array.astype(np.int64).ravel().tolist())
