"""CRC32C (Castagnoli), the checksum of TFRecord framing, from ``google-crc32c`` (C, hardware
accelerated where the CPU has it, with its own pure-Python fallback), and TFRecord's masking."""

from __future__ import annotations

import google_crc32c

MASK_DELTA = 0xA282EAD8  # TFRecord's masking constant


def crc32c(data: bytes | memoryview) -> int:
    return google_crc32c.value(bytes(data))


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's stored form: the CRC rotated right by 15 bits, plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
