"""How many environments a rollout actor steps in lockstep (``collect.envs_per_worker``).

``auto``, the default, picks by where the frames render. On an NVIDIA GPU (EGL) drawing a 64x64 frame
takes microseconds but every read-back waits for the GPU, so an actor renders its environments as
tiles of one framebuffer and reads them back once: one actor of 16 environments ran at 1.10-2.15x a
plain one-environment dm_control loop on an H200, one actor of one environment at 0.43-0.96x (README,
"Rollout on a GPU"). On a CPU (Mesa's llvmpipe) rendering is the work itself and tiles gain nothing,
so each actor steps one environment.

The driver decides, from its own node: on a cluster whose rollout nodes differ from the head, set
the number explicitly (``cluster/configs/experiment/multinode.yaml`` does).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from aime.config import CollectConfig, EnvConfig

log = logging.getLogger(__name__)

ENVS_PER_GPU_ACTOR = 16  # one read-back renders them all; more gains little (render_scaling.py)


def renders_on_nvidia_gpu(env: EnvConfig) -> bool:
    """Whether rollout actors on this node render with EGL on an NVIDIA GPU (``aime/envs/egl.py``)."""
    if env.egl_device == "cpu" or os.environ.get("MUJOCO_GL", "egl") != "egl":
        return False
    try:
        return bool(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return False


def resolve_envs_per_worker(c: CollectConfig, env: EnvConfig, on_gpu: bool | None = None) -> CollectConfig:
    """``c`` with ``envs_per_worker`` a number: ``auto`` becomes ``ENVS_PER_GPU_ACTOR`` where the frames
    render on an NVIDIA GPU (``on_gpu``; None: ask this node), else 1. A number stays as it is."""
    if c.envs_per_worker != "auto":
        return c
    on_gpu = renders_on_nvidia_gpu(env) if on_gpu is None else on_gpu
    envs = ENVS_PER_GPU_ACTOR if on_gpu else 1
    where = "EGL on an NVIDIA GPU" if on_gpu else "CPU rendering"
    log.info("collect.envs_per_worker=auto: %d (%s)", envs, where)
    return replace(c, envs_per_worker=envs)


def envs_per_worker(c: CollectConfig) -> int:
    """A resolved config's number (``resolve_envs_per_worker`` first)."""
    if not isinstance(c.envs_per_worker, int):
        raise ValueError("collect.envs_per_worker is still 'auto': call resolve_envs_per_worker first")
    return c.envs_per_worker
