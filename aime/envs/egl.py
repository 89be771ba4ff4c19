"""Which EGL device MuJoCo renders on.

MuJoCo's EGL backend picks a device by ``MUJOCO_EGL_DEVICE_ID``, an index into EGL's device list,
whose order is not CUDA's, and Ray narrows ``CUDA_VISIBLE_DEVICES`` for GPU actors. So, before the
first context is made:

* ``MUJOCO_EGL_DEVICE_ID`` already set: respected as is.
* ``egl_device="cpu"``: no GPU device is chosen; Mesa's software device (llvmpipe) renders.
* ``egl_device=<int>``: that EGL index.
* ``"auto"`` with ``CUDA_VISIBLE_DEVICES`` set: the EGL device whose CUDA ordinal
  (``EGL_CUDA_DEVICE_NV``, NVIDIA's extension) equals the first visible CUDA device. If EGL cannot
  say, nothing is pinned and MuJoCo takes the first device that initialises, which on a CPU machine
  is llvmpipe. A failed GPU choice therefore falls back to the CPU renderer, never to an error.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

EGL_CUDA_DEVICE_NV = 0x323A
_configured = False


def configure_egl(egl_device: str | int = "auto") -> str | None:
    """Set ``MUJOCO_EGL_DEVICE_ID`` once per process; returns the chosen id or None."""
    global _configured
    if _configured or os.environ.get("MUJOCO_GL", "egl") != "egl":
        return os.environ.get("MUJOCO_EGL_DEVICE_ID")
    _configured = True
    if "MUJOCO_EGL_DEVICE_ID" in os.environ:
        return os.environ["MUJOCO_EGL_DEVICE_ID"]
    if isinstance(egl_device, int):
        os.environ["MUJOCO_EGL_DEVICE_ID"] = str(egl_device)
        return str(egl_device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if egl_device == "cpu" or not visible.isdigit():
        return None
    chosen = _egl_index_of_cuda_device(int(visible))
    if chosen is None:
        log.info("EGL cannot map CUDA device %s; letting MuJoCo pick the first working device", visible)
        return None
    os.environ["MUJOCO_EGL_DEVICE_ID"] = str(chosen)
    return str(chosen)


def _egl_index_of_cuda_device(cuda_ordinal: int) -> int | None:
    try:
        import ctypes

        from mujoco.egl import egl_ext as EGL
        from OpenGL import EGL as GL_EGL

        address = GL_EGL.eglGetProcAddress("eglQueryDeviceAttribEXT")
        if not address:
            return None
        signature = ctypes.CFUNCTYPE(
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_long)
        )
        query_attribute = signature(address)
        for index, device in enumerate(EGL.eglQueryDevicesEXT()):
            value = ctypes.c_long(-1)
            handle = ctypes.cast(device, ctypes.c_void_p)
            if (
                query_attribute(handle, EGL_CUDA_DEVICE_NV, ctypes.byref(value))
                and value.value == cuda_ordinal
            ):
                return index
    except Exception as error:  # noqa: BLE001 - any EGL failure means "cannot map", not a crash
        log.info("EGL device query failed: %s", error)
    return None
