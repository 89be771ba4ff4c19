"""Frames on the wire: base64-encoded PNG strings or nested uint8 lists, and back.

Shared by the server and ``aime.client``; imports neither Ray nor torch. A frame is (H, W, 3) uint8
(height, width, RGB), the layout images use; the model's own layout is (3, H, W).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence

import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FrameError(ValueError):
    """A frame that is not what the API accepts; the message names it and what was expected."""


def encode_png(frame: np.ndarray) -> str:
    """(H, W, 3) uint8 -> base64 PNG, lossless.

    zlib level 1, not Pillow's default 6: ten 64x64 frames (an imagine answer) encode in 2.9-3.2 ms
    instead of 7.3-10.1 on the CPU machine, at 6-20% more bytes (``benchmarks/pixel_codec.py``).
    """
    from PIL import Image

    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3, (frame.dtype, frame.shape)
    buffer = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(text: str, where: str) -> np.ndarray:
    """base64 PNG -> (H, W, 3) uint8; FrameError naming ``where`` otherwise."""
    from PIL import Image

    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError(f"{where}: not valid base64") from None
    if not raw.startswith(PNG_MAGIC):
        raise FrameError(f"{where}: not a PNG image (base64 of a .png file expected)")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            if image.mode != "RGB":
                raise FrameError(f"{where}: PNG mode {image.mode}, expected RGB (3 channels, 8 bits)")
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, FrameError):
            raise
        raise FrameError(f"{where}: unreadable PNG ({error})") from None


def frames_to_array(frames: Sequence[str] | Sequence, where: str) -> np.ndarray:
    """A request's frames (PNG strings, or nested lists of [H][W][3] uint8) -> (T, H, W, 3) uint8."""
    if not len(frames):
        raise FrameError(f"{where}: empty, at least one frame expected")
    if isinstance(frames[0], str):
        decoded = [decode_png(f, f"{where}[{i}]") for i, f in enumerate(frames)]
        shapes = {d.shape for d in decoded}
        if len(shapes) > 1:
            raise FrameError(f"{where}: frames differ in size: {sorted(shapes)}")
        return np.stack(decoded)
    try:
        array = np.asarray(frames, dtype=np.int64)
    except (ValueError, TypeError):
        raise FrameError(f"{where}: ragged nested lists, expected [T][H][W][3]") from None
    if array.ndim != 4 or array.shape[3] != 3:
        raise FrameError(f"{where}: shape {list(array.shape)}, expected [T, H, W, 3]")
    if array.min() < 0 or array.max() > 255:
        raise FrameError(f"{where}: values must be 0..255")
    return array.astype(np.uint8)
