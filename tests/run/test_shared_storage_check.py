"""On a cluster of several nodes, local paths are refused before anything is written (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aime.config import Config, load_config
from aime.run.ray_init import check_shared_storage


@pytest.mark.parametrize(
    ("nodes", "overrides", "refused"),
    [
        (1, [], None),  # a laptop: local paths are fine
        (2, [], "results_dir=results and replay.root=results"),
        (3, ["results_dir=s3://b/runs"], None),  # the store follows the run directory
        (2, ["results_dir=s3://b/runs", "replay.root=/data/store"], "replay.root=/data/store"),
        (2, ["replay.root=gs://b/store"], "results_dir=results is a local path"),
        (2, ["ray.shared_paths=true"], None),  # the user says every node mounts them
    ],
)
def test_local_paths_on_several_nodes_are_refused_naming_the_key(nodes, overrides, refused):
    cfg = load_config(Config, None, overrides)
    if refused is None:
        check_shared_storage(cfg, nodes)
        return
    with pytest.raises(ValueError, match="use shared storage|Use shared storage") as error:
        check_shared_storage(cfg, nodes)
    assert refused in str(error.value) and f"{nodes} nodes" in str(error.value)


TWO_NODES = """
import json, os, sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
os.environ["RAY_ADDRESS"] = cluster.address
from aime.cli.main import main
collect = main(["collect", "--config", "tiny", "--no-progress", "results_dir=" + sys.argv[1]])
tune = main(["tune", "--config", "lr", "--no-progress", "base=tiny", "results_dir=" + sys.argv[1]])
import ray
ray.shutdown()
cluster.shutdown()
print(json.dumps({"collect": collect, "tune": tune}))
"""


def test_aime_collect_and_tune_on_a_two_node_cluster_refuse_a_local_results_dir(tmp_path):
    """A real two-node Ray (``ray.cluster_utils.Cluster``, in a subprocess: one Ray per process)."""
    results = tmp_path / "results"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", TWO_NODES, str(results)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == {"collect": 2, "tune": 2}, done.stderr[-3000:]
    assert done.stderr.count("the Ray cluster has 2 nodes") == 2 and "results_dir=s3://" in done.stderr
    assert not results.exists()  # refused before a run directory was made
