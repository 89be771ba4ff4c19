"""init_ray starts a local Ray whose processes, and the driver, leave Ray Data's progress bars off
(aime's own bar and closing summary stay readable) unless the user asks for them. The workers get
that environment by inheritance, with no job runtime_env, so the workers Ray prestarts serve aime's
actors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aime.run.ray_init import HEALTH_CHECK_INTERVAL

PROBE = """
import json, os, ray, ray.data
from aime.config import RayConfig
from aime.run.ray_init import HEALTH_CHECK_INTERVAL, init_ray

@ray.remote(num_cpus=0)
def worker_view():
    import ray.data
    env = os.environ
    return ray.data.DataContext.get_current().enable_progress_bars, env.get("LP_NUM_THREADS"), env.get(
        HEALTH_CHECK_INTERVAL
    )

seen = {}
for setting in (None, "0"):  # the default, then a user who asks for Ray Data's bars
    if setting is not None:
        os.environ["RAY_DATA_DISABLE_PROGRESS_BARS"] = setting
    init_ray(RayConfig(num_cpus=1, include_dashboard=False))
    bars, threads, poll = ray.get(worker_view.remote())
    seen[str(setting)] = {"driver": ray.data.DataContext.get_current().enable_progress_bars,
                          "worker": bars, "worker_lp_threads": threads, "worker_train_poll_s": poll,
                          "job_runtime_env": ray.get_runtime_context().get_runtime_env_string()}
    ray.shutdown()
print(json.dumps(seen))
"""


def test_ray_data_progress_bars_follow_the_setting_in_driver_and_workers():
    ours = ("RAY_DATA_DISABLE_PROGRESS_BARS", "RAY_ADDRESS", HEALTH_CHECK_INTERVAL)  # init_ray's defaults
    env = {k: v for k, v in os.environ.items() if k not in ours}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=240, check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    same = {"worker_lp_threads": "1", "worker_train_poll_s": "0.25", "job_runtime_env": "{}"}
    assert seen == {
        "None": {"driver": False, "worker": False, **same},
        "0": {"driver": True, "worker": True, **same},
    }


PRELOAD_PROBE = """
import json, sys, ray
from aime.config import RayConfig
from aime.run.ray_init import ROLLOUT_MODULES, init_ray

@ray.remote(num_cpus=0)
def imported_before_the_task():
    return [name for name in ROLLOUT_MODULES if name in sys.modules]

seen = {}
for on in (True, False):
    cfg = RayConfig(num_cpus=1, include_dashboard=False, preload_rollout_modules=on)
    init_ray(cfg, collects=True)
    seen[str(on)] = {"worker": ray.get(imported_before_the_task.remote()),
                     "driver_has_dm_control": "dm_control.suite" in sys.modules}
    ray.shutdown()
print(json.dumps(seen))
"""


def test_a_collecting_commands_workers_import_the_rollout_modules_before_their_first_task():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-c", PRELOAD_PROBE]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {
        "True": {"worker": ["aime.actors.rollout", "dm_control.suite"], "driver_has_dm_control": False},
        "False": {"worker": [], "driver_has_dm_control": False},
    }


STATE_PROBE = """
import json, ray
from aime.config import RayConfig
from aime.run.ray_init import init_ray

@ray.remote(num_cpus=0)
class Marker:
    def ready(self):
        return True

@ray.remote(num_cpus=0)
def state_of(actor_id):  # as Ray Train's placement-group cleaner asks about its controller
    from ray.util.state import get_actor
    found = get_actor(actor_id, timeout=30)
    return None if found is None else found.state

init_ray(RayConfig(num_cpus=1))
marker = Marker.remote()
ray.get(marker.ready.remote())
print(json.dumps({"state": ray.get(state_of.remote(marker._actor_id.hex()))}))
"""


def test_workers_ask_their_own_rays_state_api_with_another_ray_on_the_machine(ray_local):
    # The session's Ray is the other one; unnamed, the state API found both (or a `ray start`
    # cluster's recorded address) and could not tell which one was asked about.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    out = subprocess.run(
        [sys.executable, "-c", STATE_PROBE], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"state": "ALIVE"}
