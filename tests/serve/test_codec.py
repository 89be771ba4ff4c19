"""Frames on the wire (aime/serve/codec.py): PNG both ways is lossless, and what is not a frame says why."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from aime.serve.codec import FrameError, decode_png, encode_png, frames_to_array


@pytest.mark.parametrize("kind", ["noise", "flat", "gradient"])
def test_png_round_trips_every_pixel(kind):
    rng = np.random.default_rng(0)
    frame = {
        "noise": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        "flat": np.full((64, 64, 3), 127, np.uint8),
        "gradient": np.broadcast_to(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (64, 64, 3)).copy(),
    }[kind]
    text = encode_png(frame)
    assert base64.b64decode(text).startswith(b"\x89PNG")
    np.testing.assert_array_equal(decode_png(text, "frames[0]"), frame)
    np.testing.assert_array_equal(frames_to_array([text, text], "frames")[1], frame)


def test_what_is_not_a_png_frame_names_the_field():
    with pytest.raises(FrameError, match=r"frames\[2\]: not valid base64"):
        decode_png("not base64!", "frames[2]")
    with pytest.raises(FrameError, match=r"frames\[0\]: not a PNG image"):
        decode_png(base64.b64encode(b"GIF89a....").decode(), "frames[0]")
    with pytest.raises(FrameError, match="frames: empty"):
        frames_to_array([], "frames")
