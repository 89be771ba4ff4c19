"""Which EGL device a process renders on (aime/envs/egl.py): the choice among EGL's CUDA devices, and
the once-per-process setting on this CPU machine, whose EGL lists no NVIDIA device."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aime.envs.egl import choose_egl_device

# EGL's order is not CUDA's: on this imagined 4-GPU node EGL lists CUDA 0-3 at indices 3, 0, 2, 1.
FOUR_GPUS = {0: 3, 1: 0, 2: 2, 3: 1}


@pytest.mark.parametrize(
    ("visible", "spread_index", "expected"),
    [
        ([], 0, 3),  # actor 0: CUDA 0
        ([], 1, 0),  # actor 1: CUDA 1, EGL index 0
        ([], 5, 0),  # round-robin: actor 5 on CUDA 1
        ([], 3, 1),
        (["2"], None, 2),  # a GPU actor: its one visible device
        (["2", "3"], 1, 1),  # spread over the visible devices only: CUDA 3
        (["2", "3"], 2, 2),
        (["GPU-3f1c"], 0, None),  # UUIDs: EGL cannot match them
    ],
)
def test_the_choice_follows_cuda_ordinals_and_spreads_actors_round_robin(visible, spread_index, expected):
    assert choose_egl_device(FOUR_GPUS, visible, spread_index) == expected


def test_without_a_cuda_device_nothing_is_chosen():
    assert choose_egl_device({}, [], 4) is None  # a CPU machine: MuJoCo takes llvmpipe
    assert choose_egl_device({}, ["0"], None) is None  # a GPU EGL does not list


def _configure_in_a_fresh_process(env: dict[str, str], call: str) -> tuple[list, dict[int, int]]:
    """``call``'s result, a later ``configure_egl(7)``'s, the variable left set, and EGL's CUDA devices."""
    code = (
        "import json, os; from aime.envs.egl import configure_egl, _egl_indices_by_cuda_ordinal; "
        f"first = {call}; second = configure_egl(7); "
        "print(json.dumps([[first, second, os.environ.get('MUJOCO_EGL_DEVICE_ID')], "
        "{str(k): v for k, v in _egl_indices_by_cuda_ordinal().items()}]))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_EGL_DEVICE_ID", "CUDA_VISIBLE_DEVICES")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**base, "MUJOCO_GL": "egl", **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    settings, devices = json.loads(done.stdout.splitlines()[-1])
    return settings, {int(k): v for k, v in devices.items()}


def test_a_spread_actor_pins_its_share_of_the_gpus_or_nothing_and_the_first_setting_holds():
    # On a CPU machine EGL lists Mesa's devices only: nothing to spread over, MuJoCo keeps llvmpipe.
    # On an NVIDIA node actor 3 gets the 3 % n-th GPU. Either way the later call (an environment's own
    # egl_device) changes nothing: one setting per process.
    settings, devices = _configure_in_a_fresh_process({}, "configure_egl('auto', spread_index=3)")
    expected = choose_egl_device(devices, [], 3)
    assert settings == [None if expected is None else str(expected)] * 3, (settings, devices)


def test_an_explicit_index_or_the_environment_variable_wins():
    assert _configure_in_a_fresh_process({}, "configure_egl(2, spread_index=5)")[0] == ["2", "2", "2"]
    preset = {"MUJOCO_EGL_DEVICE_ID": "1"}
    settings, _ = _configure_in_a_fresh_process(preset, "configure_egl('auto', spread_index=5)")
    assert settings == ["1", "1", "1"]
