"""Collection on a three-node cluster on this machine (``ray.cluster_utils.Cluster``; issue 15): the
rollout actors spread over the nodes that declare the rollout resource, and removing one of those
nodes mid-collection still completes exactly the requested episodes, every file readable.

The cluster runs in a subprocess: a process joins one Ray, and the test session's is already up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import glob, json, os, sys, threading, time
import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

out = sys.argv[1]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
workers = [cluster.add_node(num_cpus=1, resources={"rollout": 2}) for _ in range(2)]
cluster.wait_for_nodes()
os.environ["RAY_ADDRESS"] = cluster.address
from aime.cli.main import main

result = {}
args = ["collect", "--config", "tiny", "--no-progress", "results_dir=" + out, "run_id=multinode",
        "collect.episodes=8", "collect.workers=2", "collect.cpus_per_worker=0.5",
        "collect.resources={rollout: 1}", "env.max_episode_steps=150",
        "ray.shared_paths=true"]  # the nodes of this cluster share this machine's disk
thread = threading.Thread(target=lambda: result.update(code=main(args)))
thread.start()
store = os.path.join(out, "multinode", "replay")
deadline = time.monotonic() + 240
while len(glob.glob(store + "/**/*.parquet", recursive=True)) < 2:
    assert time.monotonic() < deadline and thread.is_alive(), "no episodes written"
    time.sleep(0.2)
from ray._private.state import actors as actor_table
placed = {a["Address"]["NodeID"] for a in actor_table().values()
          if a["ActorClassName"].endswith("RolloutWorker") and a["State"] == "ALIVE"}
victim = next(n for n in workers if n.node_id in placed)
written_before = len(glob.glob(store + "/**/*.parquet", recursive=True))
cluster.remove_node(victim)  # the node and its actor die mid-collection
thread.join(300)
restarts = max(a.get("NumRestarts", 0) for a in actor_table().values()
               if a["ActorClassName"].endswith("RolloutWorker"))
files = glob.glob(store + "/**/*.parquet", recursive=True)
steps = [pq.read_table(f).num_rows for f in files]  # every file whole and readable
leftovers = [f for f in glob.glob(store + "/**/*", recursive=True)
             if os.path.isfile(f) and not f.endswith(".parquet")]
collected = json.load(open(os.path.join(out, "multinode", "collect.json")))
ray.shutdown()
cluster.shutdown()
print(json.dumps({"code": result.get("code"), "nodes_with_actors": len(placed), "files": len(files),
                  "steps": steps, "leftovers": leftovers, "failures": collected["worker_failures"],
                  "episodes": collected["episodes"], "written_before": written_before,
                  "restarts": restarts}))
"""


def test_removing_a_rollout_node_mid_collection_loses_no_episode(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MUJOCO_GL": "egl"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=420, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr[-4000:]
    assert result["nodes_with_actors"] == 2  # spread over both rollout nodes before the removal
    assert result["episodes"] == result["files"] == 8  # exactly the requested episodes
    assert result["steps"] == [151] * 8 and result["leftovers"] == []  # whole (150 steps + the reset)
    assert result["written_before"] < 8  # the node went while episodes were still to come
    # Its actor came back elsewhere: restarted by Ray, or replaced by the collection's driver.
    assert result["restarts"] + result["failures"] >= 1, result
