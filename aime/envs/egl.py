"""Which EGL device MuJoCo renders on.

MuJoCo's EGL backend picks a device by ``MUJOCO_EGL_DEVICE_ID``, an index into EGL's device list,
whose order is not CUDA's, and Ray narrows ``CUDA_VISIBLE_DEVICES`` for GPU actors. So, before the
first context is made:

* ``MUJOCO_EGL_DEVICE_ID`` already set: respected as is.
* ``egl_device="cpu"``: no GPU device is chosen; Mesa's software device (llvmpipe) renders.
* ``egl_device=<int>``: that EGL index.
* ``"auto"`` with ``CUDA_VISIBLE_DEVICES`` set: the EGL device whose CUDA ordinal
  (``EGL_CUDA_DEVICE_NV``, NVIDIA's extension) equals the first visible CUDA device.
* ``"auto"`` with a ``spread_index`` (rollout actor ``i``): the ``i % n``-th of the ``n`` CUDA devices
  (the visible ones, else all that EGL reports), so actors that hold no GPU share out a multi-GPU
  node's GPUs instead of all rendering on the first.
* Otherwise, or if EGL cannot say, nothing is pinned and MuJoCo takes the first device that
  initialises, which on a CPU machine is llvmpipe. A failed GPU choice therefore falls back to the
  CPU renderer, never to an error.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

EGL_CUDA_DEVICE_NV = 0x323A
_configured = False


def configure_egl(egl_device: str | int = "auto", spread_index: int | None = None) -> str | None:
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
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if egl_device == "cpu" or (not visible and spread_index is None):
        return None
    chosen = choose_egl_device(_egl_indices_by_cuda_ordinal(), visible, spread_index)
    if chosen is None:
        log.info("EGL cannot map CUDA devices %s; letting MuJoCo pick the first working device", visible)
        return None
    log.info("EGL device %d (CUDA_VISIBLE_DEVICES=%s, spread index %s)", chosen, visible, spread_index)
    os.environ["MUJOCO_EGL_DEVICE_ID"] = str(chosen)
    return str(chosen)


def choose_egl_device(
    egl_index_by_cuda: dict[int, int], visible: list[str], spread_index: int | None
) -> int | None:
    """The EGL index to render on, from EGL's CUDA devices ``{CUDA ordinal: EGL index}``.

    The candidates are the CUDA ordinals in ``visible`` (``CUDA_VISIBLE_DEVICES``) when it is set,
    else every CUDA device EGL reports; ``spread_index`` picks one of them round-robin, None the
    first. None where there is no candidate EGL can map (UUIDs in ``visible``, a CPU machine)."""
    if visible:
        if not all(v.isdigit() for v in visible):
            return None
        candidates = [int(v) for v in visible]
    else:
        candidates = sorted(egl_index_by_cuda)
    if not candidates:
        return None
    return egl_index_by_cuda.get(candidates[(spread_index or 0) % len(candidates)])


def _egl_indices_by_cuda_ordinal() -> dict[int, int]:
    """``{CUDA ordinal: EGL device index}`` for the NVIDIA devices EGL lists; empty if it cannot say."""
    found: dict[int, int] = {}
    try:
        import ctypes

        from mujoco.egl import egl_ext as EGL
        from OpenGL import EGL as GL_EGL

        address = GL_EGL.eglGetProcAddress("eglQueryDeviceAttribEXT")
        if not address:
            return found
        signature = ctypes.CFUNCTYPE(
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_long)
        )
        query_attribute = signature(address)
        for index, device in enumerate(EGL.eglQueryDevicesEXT()):
            value = ctypes.c_long(-1)
            handle = ctypes.cast(device, ctypes.c_void_p)
            if query_attribute(handle, EGL_CUDA_DEVICE_NV, ctypes.byref(value)) and value.value >= 0:
                found.setdefault(int(value.value), index)
    except Exception as error:  # noqa: BLE001 - any EGL failure means "cannot map", not a crash
        log.info("EGL device query failed: %s", error)
    return found
