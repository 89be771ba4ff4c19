"""The protobuf wire format of ``tf.train.Example`` and ``tf.train.SequenceExample``, without TensorFlow.

Only the messages an episode record uses (tensorflow/core/example/{example,feature}.proto)::

    Example         { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }           // map entry: key = 1, value = 2
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
                              Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }   FloatList { repeated float value = 1; }
    Int64List { repeated int64 value = 1; }

Bytes values are memoryview slices of the record (no copies); numeric lists are numpy arrays. Both
packed and unpacked repeated numbers are accepted, as the protobuf spec requires of parsers. Unknown
fields are skipped. Malformed input raises ``ProtobufError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    pass


@dataclass
class Feature:
    """One ``tf.train.Feature``: ``kind`` is 'bytes', 'float', 'int64' or '' (empty)."""

    kind: str = ""
    bytes_values: list[memoryview] = field(default_factory=list)
    numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.bytes_values) if self.kind == "bytes" else len(self.numbers)


# ---- decoding ---------------------------------------------------------------------------------
def parse_example(data: bytes | memoryview) -> dict[str, Feature]:
    """A serialized ``tf.train.Example`` -> {feature name: Feature}."""
    features: dict[str, Feature] = {}
    for _, _, value in iter_fields(memoryview(data), want_length={1}):
        features.update(_parse_features(value))
    return features


def parse_sequence_example(data: bytes | memoryview) -> tuple[dict[str, Feature], dict[str, list[Feature]]]:
    """A serialized ``tf.train.SequenceExample`` -> (context features, {name: one Feature per step})."""
    context: dict[str, Feature] = {}
    lists: dict[str, list[Feature]] = {}
    for number, _, value in iter_fields(memoryview(data), want_length={1, 2}):
        if number == 1:
            context.update(_parse_features(value))
        else:
            for _, _, entry in iter_fields(value, want_length={1}):
                key, raw = _map_entry(entry)
                lists[key] = [_parse_feature(f) for _, _, f in iter_fields(raw, want_length={1})]
    return context, lists


def _parse_features(data: memoryview) -> dict[str, Feature]:
    out = {}
    for _, _, entry in iter_fields(data, want_length={1}):
        key, raw = _map_entry(entry)
        out[key] = _parse_feature(raw)  # a repeated map key: the last one wins, as in protobuf
    return out


def _map_entry(entry: memoryview) -> tuple[str, memoryview]:
    key, value = "", memoryview(b"")
    for number, _, raw in iter_fields(entry, want_length={1, 2}):
        if number == 1:
            try:
                key = bytes(raw).decode()
            except UnicodeDecodeError as error:
                raise ProtobufError(f"feature name is not UTF-8: {error}") from None
        else:
            value = raw
    return key, value


def _parse_feature(data: memoryview) -> Feature:
    feature = Feature()
    for number, _, body in iter_fields(data, want_length={1, 2, 3}):
        if number == 1:
            values = [raw for _, _, raw in iter_fields(body, want_length={1})]
            feature = Feature("bytes", bytes_values=values)
        elif number == 2:
            feature = Feature("float", numbers=_repeated_numbers(body, "float"))
        else:
            feature = Feature("int64", numbers=_repeated_numbers(body, "int64"))
    return feature


def _repeated_numbers(body: memoryview, kind: str) -> np.ndarray:
    chunks: list[np.ndarray] = []
    scalars: list[Any] = []
    for _, wire, value in iter_fields(body, want_length=None):
        if wire == LENGTH:  # packed
            if kind == "float":
                if len(value) % 4:
                    raise ProtobufError(f"packed floats of {len(value)} bytes")
                chunks.append(np.frombuffer(value, "<f4"))
            else:
                chunks.append(decode_varints(value))
        elif kind == "float" and wire == FIXED32:
            scalars.append(struct.unpack("<f", value)[0])
        elif kind == "int64" and wire == VARINT:
            scalars.append(value - (1 << 64) if value >= 1 << 63 else value)
        else:
            raise ProtobufError(f"{kind} list with wire type {wire}")
    dtype = np.float32 if kind == "float" else np.int64
    if scalars:
        chunks.append(np.array(scalars, dtype))
    if not chunks:
        return np.zeros(0, dtype)
    return chunks[0].astype(dtype, copy=False) if len(chunks) == 1 else np.concatenate(chunks).astype(dtype)


def decode_varints(data: memoryview | bytes) -> np.ndarray:
    """Packed base-128 varints -> int64 (negative int64s are 10-byte two's complement varints)."""
    raw = np.frombuffer(data, np.uint8)
    if not len(raw):
        return np.zeros(0, np.int64)
    if raw[-1] & 0x80:
        raise ProtobufError("packed varints end inside a value")
    ends = np.flatnonzero(raw < 0x80)
    starts = np.concatenate([[0], ends[:-1] + 1])
    position = np.arange(len(raw)) - np.repeat(starts, ends - starts + 1)  # byte index within its varint
    if position.max() > 9:
        raise ProtobufError("varint longer than 10 bytes")
    parts = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts).view(np.int64)


def iter_fields(data: memoryview, want_length: set[int] | None) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field; ``want_length`` keeps only those length-delimited
    field numbers (None keeps every field)."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == VARINT:
            value, pos = _varint(data, pos)
        elif wire == FIXED64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == LENGTH:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == FIXED32:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} (field {number})")
        if pos > end:
            raise ProtobufError(f"field {number} runs past the end of its message")
        if want_length is None or (wire == LENGTH and number in want_length):
            yield number, wire, value


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


# ---- encoding (test data and benchmarks) --------------------------------------------------------
