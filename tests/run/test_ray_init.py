"""init_ray starts a local Ray whose processes, and the driver, leave Ray Data's progress bars off
(aime's own bar and closing summary stay readable) unless the user asks for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, ray, ray.data
from aime.config import RayConfig
from aime.run.ray_init import init_ray

init_ray(RayConfig(num_cpus=1, include_dashboard=False))

@ray.remote(num_cpus=0)
def worker_view():
    import ray.data
    return ray.data.DataContext.get_current().enable_progress_bars

print(json.dumps({"driver": ray.data.DataContext.get_current().enable_progress_bars,
                  "worker": ray.get(worker_view.remote())}))
ray.shutdown()
"""


@pytest.mark.parametrize(("setting", "shown"), [(None, False), ("0", True)])
def test_ray_data_progress_bars_follow_the_setting_in_driver_and_workers(setting, shown):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_DATA_DISABLE_PROGRESS_BARS", "RAY_ADDRESS")}
    if setting is not None:
        env["RAY_DATA_DISABLE_PROGRESS_BARS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"driver": shown, "worker": shown}
