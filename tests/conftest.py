"""Shared fixtures: a real local Ray, tiny configs, and synthetic replay stores."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402

from aime.config import Config, load_config  # noqa: E402


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray for the whole session (starting one costs seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=True, runtime_env={"env_vars": {"MUJOCO_GL": "egl"}})
    yield ray
    ray.shutdown()


@pytest.fixture
def tiny_config(tmp_path) -> Config:
    """The tiny experiment, writing under tmp_path."""
    return load_config(Config, "tiny", [f"results_dir={tmp_path / 'results'}"])
