"""TFRecord framing: read records one at a time from a stream, checking lengths and checksums.

A record on disk is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian. A bad data checksum spoils one record: it is reported and reading goes on. A bad length
checksum or a short read means the framing itself can no longer be trusted: it is reported and the
rest of the file is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from aime.replay.importers.crc32c import masked_crc32c

HEADER = struct.Struct("<QI")
FOOTER = struct.Struct("<I")
MAX_RECORD_BYTES = 1 << 31  # no sane episode is larger; a bigger length is corrupt framing


class Readable(Protocol):
    def read(self, n: int) -> bytes: ...


@dataclass(frozen=True)
class Record:
    """Record ``index`` of a file: ``data`` when it is intact, else ``error`` says why not."""

    index: int
    offset: int
    data: bytes | None = None
    error: str | None = None


def read_records(stream: Readable | BinaryIO, verify: bool = True) -> Iterator[Record]:
    """Yield each record of a TFRecord stream; a framing error is yielded last, then iteration stops."""
    index = offset = 0
    while True:
        header = _read_exactly(stream, HEADER.size)
        if not header:
            return
        if len(header) < HEADER.size:
            yield Record(index, offset, error=f"truncated file: {len(header)}-byte record header")
            return
        length, length_crc = HEADER.unpack(header)
        if verify and masked_crc32c(header[:8]) != length_crc:
            yield Record(index, offset, error="corrupt record header (length checksum); rest of file skipped")
            return
        if length > MAX_RECORD_BYTES:
            yield Record(index, offset, error=f"record length {length} is implausible; rest of file skipped")
            return
        body = _read_exactly(stream, length + FOOTER.size)
        if len(body) < length + FOOTER.size:
            yield Record(
                index, offset, error=f"truncated file: record of {length} bytes has {len(body)} bytes left"
            )
            return
        data = body[:length]
        (data_crc,) = FOOTER.unpack_from(body, length)
        if verify and masked_crc32c(data) != data_crc:
            yield Record(index, offset, error="bad data checksum (CRC32C)")
        else:
            yield Record(index, offset, data=data)
        index += 1
        offset += HEADER.size + length + FOOTER.size


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord record (for writers of test data)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _read_exactly(stream: Readable | BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream (some streams return short reads)."""
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
