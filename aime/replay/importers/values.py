"""Turning one feature's stored values into arrays: frames from PNG/JPEG/zlib/raw bytes, numbers from
float/int64 lists or (possibly zlib-compressed) raw little-endian bytes.

The encodings are the ones TFDS writes for RLDS datasets: an ``Image`` feature is one encoded image per
step; a ``Tensor`` feature is a float/int64 list, or with ``encoding=bytes``/``zlib`` one raw (or
zlib-compressed) ``tobytes()`` per step; a whole-episode blob (one value for all steps) is accepted
too. Any mismatch raises ``ValueError`` naming the feature, which the importer reports and skips.
"""

from __future__ import annotations

import io
import logging
import math
import zlib

import numpy as np

from aime.replay.importers.protobuf import Feature

PNG_MAGIC = b"\x89PNG"
JPEG_MAGIC = b"\xff\xd8"
ZLIB_FIRST_BYTE = 0x78  # deflate with a 32 KiB window: what zlib.compress writes at every level

log = logging.getLogger(__name__)


def decode_frames(feature: Feature, steps: int, name: str = "pixels") -> np.ndarray:
    """(steps, C, H, W) uint8 from one image per step, or from one blob holding all steps."""
    if feature.kind != "bytes":
        raise ValueError(f"{name}: expected bytes (images), got a {feature.kind or 'empty'} feature")
    items: list[bytes] | list[memoryview] = feature.bytes_values
    if len(items) == 1 and steps > 1:
        blob = _maybe_inflate(items[0])
        if len(blob) % steps:
            raise ValueError(f"{name}: one blob of {len(blob)} bytes does not split into {steps} frames")
        size = len(blob) // steps
        items = [memoryview(blob)[i * size : (i + 1) * size] for i in range(steps)]
    if len(items) != steps:
        raise ValueError(f"{name}: {len(items)} images for {steps} steps")
    first = decode_image(items[0], name)
    frames = np.empty((steps, *first.shape), np.uint8)  # (T, C, H, W)
    frames[0] = first
    for t in range(1, steps):
        frame = decode_image(items[t], name)
        if frame.shape != first.shape:
            raise ValueError(f"{name}: step {t} has shape {frame.shape}, step 0 {first.shape}")
        frames[t] = frame
    return frames


def decode_image(item: memoryview | bytes, name: str = "pixels") -> np.ndarray:
    """(C, H, W) uint8 from a PNG, a JPEG, or raw (maybe zlib-compressed) square RGB bytes (H, W, 3)."""
    head = bytes(item[:4])
    if head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(item)) as image:
                array = np.asarray(image.convert("RGB"))  # (H, W, 3)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise ValueError(f"{name}: undecodable image: {error}") from None
    else:
        raw = _maybe_inflate(item)
        side = math.isqrt(len(raw) // 3)
        if side * side * 3 != len(raw) or not raw:
            raise ValueError(f"{name}: {len(raw)} raw bytes are not a square RGB frame")
        array = np.frombuffer(raw, np.uint8).reshape(side, side, 3)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def decode_numbers(feature: Feature, steps: int, name: str, dtype: str = "<f8") -> np.ndarray:
    """(steps, D) float64: a float/int64 list of steps * D values, or bytes of ``dtype`` per step."""
    if feature.kind in ("float", "int64"):
        values = feature.numbers.astype(np.float64)
    elif feature.kind == "bytes":
        items = feature.bytes_values
        if len(items) not in (1, steps):
            raise ValueError(f"{name}: {len(items)} byte strings for {steps} steps")
        raw = [_maybe_inflate(item) for item in items]
        width = np.dtype(dtype).itemsize
        if len(items) == steps and len({len(r) for r in raw}) > 1:
            raise ValueError(f"{name}: steps hold different numbers of bytes {sorted({len(r) for r in raw})}")
        if any(len(r) % width for r in raw):
            raise ValueError(f"{name}: {len(raw[0])} bytes are not whole {np.dtype(dtype).name} values")
        values = np.frombuffer(b"".join(raw), dtype).astype(np.float64)
    else:
        raise ValueError(f"{name}: empty feature")
    if steps == 0 or len(values) % steps:
        raise ValueError(f"{name}: {len(values)} values for {steps} steps")
    return values.reshape(steps, -1)


def decode_flags(feature: Feature, steps: int, name: str) -> np.ndarray:
    """(steps,) bool from an int64 list (TFDS stores bools as int64) or any numeric encoding."""
    values = decode_numbers(feature, steps, name, dtype="<u1")
    if values.shape[1] != 1:
        raise ValueError(f"{name}: {values.shape[1]} values per step, expected 1")
    return values[:, 0] != 0


def _maybe_inflate(item: memoryview | bytes) -> bytes:
    """zlib-decompressed bytes if ``item`` is a zlib stream, else the bytes as they are. zlib's header
    check and Adler-32 trailer make a false positive on raw data practically impossible."""
    if len(item) >= 6 and item[0] == ZLIB_FIRST_BYTE and (item[0] << 8 | item[1]) % 31 == 0:
        try:
            return zlib.decompress(item)
        except zlib.error as error:  # raw bytes that happen to start like zlib, or a corrupt stream
            log.warning("a zlib-looking payload of %d bytes did not inflate (%s): raw", len(item), error)
    return bytes(item)
