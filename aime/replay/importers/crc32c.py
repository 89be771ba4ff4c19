"""CRC32C (Castagnoli), the checksum of TFRecord framing, in numpy: about as fast as reading the file.

A byte-at-a-time table loop in Python runs at ~5 MB/s, far too slow for a 7 GB subset. The CRC is
linear over GF(2), so the data is cut into equal lanes whose CRCs are computed side by side (one numpy
op per byte column), then folded pairwise: ``crc(A || B) = shift_{|B|}(crc(A)) ^ crc(B)``, where
``shift_n`` (advance the register over n zero bytes) is a 32x32 bit matrix. Lanes are padded with
zeros at the front, which leaves a zero register unchanged. The initial value 0xFFFFFFFF is applied by
inverting the first four message bytes, which is equivalent for a reflected CRC.
"""

from __future__ import annotations

from functools import cache

import numpy as np

POLYNOMIAL = 0x82F63B78  # Castagnoli, reflected
MASK_DELTA = 0xA282EAD8  # TFRecord's masking constant
SMALL = 2048  # below this many bytes the plain loop is faster than setting up lanes
MAX_LANE = 4096


def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


TABLE = _make_table()
_TABLE_LIST = [int(x) for x in TABLE]
_BASIS = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """The standard CRC32C of ``data`` (init and final xor 0xFFFFFFFF): crc32c(b"123456789") = 0xE3069283."""
    view = memoryview(data).cast("B")
    if len(view) < SMALL:
        return _register_loop(0xFFFFFFFF, view) ^ 0xFFFFFFFF
    lane = min(MAX_LANE, 1 << (int(np.sqrt(len(view))).bit_length() - 1))
    lanes = -(-len(view) // lane)
    padded = np.zeros(lanes * lane, np.uint8)
    start = len(padded) - len(view)
    padded[start:] = np.frombuffer(view, np.uint8)
    padded[start : start + 4] ^= 0xFF
    return _lanes_register(padded.reshape(lanes, lane)) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's stored checksum: the CRC rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def _register_loop(register: int, data: memoryview) -> int:
    table = _TABLE_LIST
    for byte in data:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _lanes_register(lanes: np.ndarray) -> int:
    """The register (from 0, no final xor) after all bytes of ``lanes`` (K, L), row after row."""
    K, L = lanes.shape
    columns = np.ascontiguousarray(lanes.T)  # (L, K): one contiguous row per byte position
    register = np.zeros(K, np.uint32)
    for byte in columns:
        register = TABLE[(register ^ byte) & 0xFF] ^ (register >> 8)
    shift = _shift_matrix(L)
    while len(register) > 1:
        if len(register) % 2:
            register = np.concatenate([np.zeros(1, np.uint32), register])  # a zero lane in front
        register = _apply(shift, register[0::2]) ^ register[1::2]
        shift = _apply(shift, shift)  # blocks double in length
    return int(register[0])


def _apply(matrix: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """GF(2) matrix (32 column images, uint32) times each uint32 in ``vectors``."""
    out = np.zeros_like(vectors)
    for bit in range(32):
        out ^= matrix[bit] * ((vectors >> np.uint32(bit)) & np.uint32(1))
    return out


@cache
def _shift_matrix(n: int) -> np.ndarray:
    """Columns of the map 'advance the register over n zero bytes'."""
    one_byte = (TABLE[_BASIS & 0xFF] ^ (_BASIS >> np.uint32(8))).astype(np.uint32)
    result, power = _BASIS.copy(), one_byte
    while n:
        if n & 1:
            result = _apply(power, result)
        power = _apply(power, power)
        n >>= 1
    result.setflags(write=False)
    return result
