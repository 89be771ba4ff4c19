"""Pixel observations: one GL context renders the frames of one or many physics of the same model.

dm_control's ``physics.render`` builds its scene per call and costs several times more per frame;
one renderer per actor, reused for every frame, is the cheap path. "Lite" turns off shadows,
reflections and the skybox: on the CPU (Mesa llvmpipe through EGL) a 64x64 frame drops from 12-35 ms
to 1.8-9 ms. The trade-off is visual: no shadows to hint at height, a black background instead of
the sky gradient.

Several environments stepped in lockstep are drawn as tiles of one offscreen framebuffer and read
back with one ``glReadPixels``. On a GPU a 64x64 frame is a few microseconds of drawing but each
read-back waits for the GPU (about 0.26 ms on an H200), and many processes each waiting on their
own context serialise on it; one read-back per batch pays that wait once for all tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from aime.envs.egl import configure_egl


class PixelRenderer:
    """Renders ``(H, W, 3)`` uint8 frames of one physics, or ``(N, H, W, 3)`` of up to ``tiles``."""

    def __init__(
        self,
        physics: Any,
        height: int,
        width: int,
        camera: int,
        lite: bool = True,
        egl_device: str | int = "auto",
        tiles: int = 1,
    ):
        configure_egl(egl_device)
        self.height, self.width, self.tiles = height, width, tiles
        self.cols = math.ceil(math.sqrt(tiles))
        self.rows = math.ceil(tiles / self.cols)
        model = physics.model.ptr
        # The offscreen buffer must hold every tile; dm_control models default to 640x480.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.cols * width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.rows * height)
        self._physics = physics
        self._model = model
        self._gl: Any = mujoco.GLContext(self.cols * width, self.rows * height)
        self._gl.make_current()
        self._context: Any = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        # One scene, refilled per tile: mjr_render has copied what it needs before the next update.
        self._scene = mujoco.MjvScene(model, maxgeom=10000)
        if lite:
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._scene.flags[flag] = 0
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
        self._option = mujoco.MjvOption()
        self._camera = _camera(model, camera)
        self._buffer = np.empty((self.rows * height, self.cols * width, 3), np.uint8)

    def render(self) -> np.ndarray:
        """The constructor's physics: ``(H, W, 3)`` uint8, a fresh array."""
        return self.render_many([self._physics])[0].copy()

    def render_many(self, physics: Sequence[Any]) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 frames of N physics (same model), one read-back for all. A view
        of the renderer's buffer, valid until the next call: copy what you keep."""
        n, h, w = len(physics), self.height, self.width
        assert 1 <= n <= self.tiles, (n, self.tiles)
        if self._context is None:
            raise RuntimeError("PixelRenderer.render_many() after close()")
        self._gl.make_current()
        for k, p in enumerate(physics):
            row, col = divmod(k, self.cols)
            mujoco.mjv_updateScene(
                p.model.ptr,
                p.data.ptr,
                self._option,
                None,
                self._camera,
                mujoco.mjtCatBit.mjCAT_ALL.value,
                self._scene,
            )
            mujoco.mjr_render(mujoco.MjrRect(col * w, row * h, w, h), self._scene, self._context)
        rows = math.ceil(n / self.cols)
        used = self._buffer[: rows * h]
        mujoco.mjr_readPixels(used, None, mujoco.MjrRect(0, 0, self.cols * w, rows * h), self._context)
        # GL's rows run bottom-up: tile k sits at (k // cols, k % cols) counted from the bottom left.
        tiles = used.reshape(rows, h, self.cols, w, 3).swapaxes(1, 2).reshape(rows * self.cols, h, w, 3)
        return tiles[:n, ::-1]  # (N, H, W, 3), each frame flipped upright

    def gl_renderer(self) -> str:
        """The GL renderer string (an NVIDIA GPU, or llvmpipe for Mesa's CPU renderer)."""
        from OpenGL import GL

        self._gl.make_current()
        return GL.glGetString(GL.GL_RENDERER).decode()

    def close(self) -> None:
        # Freeing explicitly avoids EGL errors from __del__ at interpreter shutdown.
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()


def _camera(model: Any, camera: int) -> Any:
    out = mujoco.MjvCamera()
    if camera == -1:
        out.type = mujoco.mjtCamera.mjCAMERA_FREE
        mujoco.mjv_defaultFreeCamera(model, out)
    else:
        out.type = mujoco.mjtCamera.mjCAMERA_FIXED
        out.fixedcamid = camera
    return out
