"""CRC32C, TFRecord framing and the protobuf wire format, against known values and round trips."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from aime.replay.importers.crc32c import crc32c, masked_crc32c
from aime.replay.importers.protobuf import (
    ProtobufError,
    parse_episode_record,
    parse_example,
    parse_sequence_example,
)
from aime.replay.importers.testing import encode_example, encode_sequence_example
from aime.replay.importers.tfrecord import frame_record, read_records


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43  # RFC 3720, B.4: 32 bytes of 0xff
    assert crc32c(bytes(range(32))) == 0x46DD794E  # RFC 3720, B.4: incrementing bytes
    assert crc32c(memoryview(b"123456789")) == 0xE3069283


def test_masked_crc_is_the_rotated_crc_plus_the_tfrecord_constant():
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_records_round_trip_and_a_bad_checksum_spoils_only_its_record():
    payloads = [b"first", b"x" * 5000, b"", b"last"]
    framed = [bytearray(frame_record(p)) for p in payloads]
    framed[1][12 + 100] ^= 0x01  # one bit of record 1's data
    records = list(read_records(io.BytesIO(b"".join(framed))))
    assert [r.data for r in records] == [b"first", None, b"", b"last"]
    assert records[1].error == "bad data checksum (CRC32C)" and records[1].index == 1
    assert records[3].offset == sum(len(f) for f in framed[:3])


def test_truncation_and_a_corrupt_length_stop_the_file_with_one_error():
    data = frame_record(b"a" * 10) + frame_record(b"b" * 10)
    truncated = list(read_records(io.BytesIO(data[:-3])))
    assert truncated[0].data == b"a" * 10
    assert truncated[1].data is None and "truncated file" in truncated[1].error and len(truncated) == 2
    short_header = list(read_records(io.BytesIO(data[: len(data) // 2 + 5])))
    assert "truncated file" in short_header[-1].error
    bad_length = bytearray(data)
    bad_length[len(data) // 2] ^= 0x01  # record 1's length field
    records = list(read_records(io.BytesIO(bytes(bad_length))))
    assert records[1].error.startswith("corrupt record header") and len(records) == 2


def test_example_and_sequence_example_round_trip():
    example = encode_example(
        {"b": [b"png", b""], "f": np.array([1.5, -2.0], np.float32), "i": np.array([0, 1, -3, 2**40])}
    )
    parsed = parse_example(example)
    assert [bytes(v) for v in parsed["b"].bytes_values] == [b"png", b""]
    np.testing.assert_array_equal(parsed["f"].numbers, [1.5, -2.0])
    np.testing.assert_array_equal(parsed["i"].numbers, [0, 1, -3, 2**40])
    context, lists = parse_sequence_example(
        encode_sequence_example({"id": np.array([7])}, {"a": [np.array([1.0]), np.array([2.0])]})
    )
    assert context["id"].numbers.tolist() == [7]
    assert [f.numbers.tolist() for f in lists["a"]] == [[1.0], [2.0]]


def test_unpacked_repeated_numbers_are_accepted():
    # FloatList{value: 1.0 (fixed32, unpacked)} and Int64List{value: 5, value: -1 (varints, unpacked)}
    floats = b"\x0d" + struct.pack("<f", 1.0)
    ints = b"\x08\x05" + b"\x08" + b"\xff" * 9 + b"\x01"
    feature_f = b"\x12" + bytes([len(floats)]) + floats
    feature_i = b"\x1a" + bytes([len(ints)]) + ints

    def entry(key: bytes, feature: bytes) -> bytes:
        body = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
        return b"\x0a" + bytes([len(body)]) + body

    features = entry(b"f", feature_f) + entry(b"i", feature_i)
    parsed = parse_example(b"\x0a" + bytes([len(features)]) + features)
    assert parsed["f"].numbers.tolist() == [1.0] and parsed["i"].numbers.tolist() == [5, -1]


def test_malformed_messages_raise():
    with pytest.raises(ProtobufError, match="malformed Example"):
        parse_example(b"\x0a\x50abc")  # a length past the end
    with pytest.raises(ProtobufError, match="malformed SequenceExample"):
        parse_episode_record(b"\x0a\x05\x0a\x03\x0a\x01")  # a map entry cut inside its key


def test_one_parse_reads_an_example_or_a_sequence_example():
    features, lists = parse_episode_record(encode_example({"steps/a": np.array([1.0, 2.0])}))
    assert lists == {} and features["steps/a"].numbers.tolist() == [1.0, 2.0]
    context, lists = parse_episode_record(encode_sequence_example({}, {"a": [np.array([3])]}))
    assert context == {} and [f.numbers.tolist() for f in lists["a"]] == [[3]]
