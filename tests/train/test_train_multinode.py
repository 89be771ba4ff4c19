"""Training on a three-node cluster on this machine (``ray.cluster_utils.Cluster``; issue 15): removing
the node of the training worker mid-run, Ray Train restarts it on the other node from the last
checkpoint and the run finishes, losing at most one checkpoint interval.

The cluster runs in a subprocess: a process joins one Ray, and the test session's is already up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, os, sys, threading, time
import ray
from ray.cluster_utils import Cluster
from aime.replay.synthetic import write_synthetic_episodes

out = sys.argv[1]
write_synthetic_episodes(out + "/replay", 3, length=20, image_size=32, action_dim=6)
import socket
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
# Ray Train's controller reads the state API: a dashboard, on ports the session's Ray does not hold.
cluster = Cluster(initialize_head=True, head_node_args={
    "num_cpus": 0, "include_dashboard": True, "dashboard_port": free_port(),
    "dashboard_agent_listen_port": free_port()})
nodes = [cluster.add_node(num_cpus=2, dashboard_agent_listen_port=free_port()) for _ in range(2)]
cluster.wait_for_nodes()
os.environ["RAY_ADDRESS"] = cluster.address
from aime.cli.main import main

result = {}
args = ["train", "--config", "tiny", "--no-progress", "results_dir=" + out + "/results", "run_id=moved",
        "replay.root=" + out + "/replay", "train.steps=10", "train.checkpoint_every=2", "train.log_every=1",
        "train.num_workers=1", "train.eval_windows=0", "train.max_failures=2", "seed=7",
        "ray.shared_paths=true"]  # the nodes of this cluster share this machine's disk
thread = threading.Thread(target=lambda: result.update(code=main(args)))
thread.start()
metrics = out + "/results/moved/metrics.jsonl"

def records():
    try:
        return [json.loads(line) for line in open(metrics).read().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []

deadline = time.monotonic() + 300
while not any("train/checkpoint" in r and r["step"] >= 4 for r in records()):
    assert time.monotonic() < deadline and thread.is_alive(), "no checkpoint at step 4"
    time.sleep(0.1)
from ray._private.state import actors as actor_table
(node_id,) = {a["Address"]["NodeID"] for a in actor_table().values()
              if "RayTrainWorker" in a["ActorClassName"] and a["State"] == "ALIVE"}
registered = max(r["step"] for r in records() if "train/checkpoint" in r)
cluster.remove_node(next(n for n in nodes if n.node_id == node_id))  # the worker's node goes
thread.join(420)
steps = [r["step"] for r in records() if "train/total" in r]
workers = sum("RayTrainWorker" in a["ActorClassName"] for a in actor_table().values())
ray.shutdown()
cluster.shutdown()
print(json.dumps({"code": result.get("code"), "registered": registered, "steps": steps, "workers": workers}))
"""


def test_removing_the_training_workers_node_resumes_from_the_last_checkpoint(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MUJOCO_GL": "egl"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr[-4000:]
    assert result["workers"] == 2, result  # the worker was started again, once
    steps = result["steps"]  # as logged, in order: steps redone after the restart are logged again
    again = [i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]]
    if again:  # else the worker died right after a checkpoint and nothing was redone
        resumed, reached = steps[again[0]] - 1, max(steps[: again[0]])  # continued from, got to
        assert resumed >= result["registered"] and resumed % 2 == 0, result  # the last checkpoint
        assert reached - resumed <= 2, result  # steps lost <= one checkpoint interval
    assert steps[-1] == 10 and sorted(set(steps)) == list(range(1, 11)), result  # and it finished
