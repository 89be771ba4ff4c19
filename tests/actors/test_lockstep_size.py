"""collect.envs_per_worker: ``auto`` by default, 16 lockstep environments per actor where EGL renders on
an NVIDIA GPU and 1 on a CPU; a number is kept; bad values fail at load time naming the key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aime.actors.lockstep_size import (
    ENVS_PER_GPU_ACTOR,
    envs_per_worker,
    renders_on_nvidia_gpu,
    resolve_envs_per_worker,
)
from aime.config import Config, load_config


def test_the_default_is_auto_and_resolves_by_where_frames_render():
    cfg = load_config(Config, None, [])
    assert cfg.collect.envs_per_worker == "auto"
    on_cpu = resolve_envs_per_worker(cfg.collect, cfg.env, on_gpu=False)
    on_gpu = resolve_envs_per_worker(cfg.collect, cfg.env, on_gpu=True)
    assert (envs_per_worker(on_cpu), envs_per_worker(on_gpu)) == (1, ENVS_PER_GPU_ACTOR)
    assert replace(on_gpu, envs_per_worker="auto") == cfg.collect  # nothing else changed


def test_a_number_is_kept_wherever_frames_render():
    cfg = load_config(Config, None, ["collect.envs_per_worker=4"])
    for on_gpu in (False, True):
        assert envs_per_worker(resolve_envs_per_worker(cfg.collect, cfg.env, on_gpu)) == 4


def test_this_machine_and_cpu_rendering_resolve_to_one_environment():
    # No NVIDIA driver on the CI machine; egl_device=cpu means llvmpipe even on a GPU node.
    cfg = load_config(Config, None, ["env.egl_device=cpu"])
    assert not renders_on_nvidia_gpu(cfg.env)
    assert envs_per_worker(resolve_envs_per_worker(cfg.collect, cfg.env)) == 1


def test_an_unresolved_auto_is_refused_where_a_number_is_needed():
    cfg = load_config(Config, None, [])
    with pytest.raises(ValueError, match="resolve_envs_per_worker"):
        envs_per_worker(cfg.collect)


@pytest.mark.parametrize("value", ["many", "0", "-2"])
def test_bad_values_name_the_key(value):
    with pytest.raises(ValueError, match="collect.envs_per_worker"):
        load_config(Config, None, [f"collect.envs_per_worker={value}"])
