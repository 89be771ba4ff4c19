"""On a cluster of several nodes, local paths are refused before anything is written (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aime.config import Config, load_config
from aime.run.ray_init import SHARED_PATHS_ENV, check_shared_locations, check_shared_storage


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


def test_a_commands_local_paths_are_refused_unless_every_node_mounts_them(monkeypatch):
    """The commands without a run config (lens, import, serve paths) name the path they were given."""
    paths = {"activations": "s3://b/acts", "--out": "packs/tiny", "episodes": None}
    check_shared_locations(1, paths)  # one node: anything goes
    with pytest.raises(ValueError, match=r"3 nodes but --out=packs/tiny is a local path") as error:
        check_shared_locations(3, paths)  # the URI and the unset location pass
    assert "AIME_SHARED_PATHS=1" in str(error.value)
    check_shared_locations(3, paths, shared_paths=True)  # the run's ray.shared_paths=true
    monkeypatch.setenv(SHARED_PATHS_ENV, "1")
    check_shared_locations(3, paths)


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
source = os.path.join(os.path.dirname(sys.argv[1]), "npz")
os.makedirs(source)
imported = main(["replay", "import", "npz", source, "--task", "cheetah-run", "--out", sys.argv[1] + "/store"])
import ray
ray.shutdown()
cluster.shutdown()
print(json.dumps({"collect": collect, "tune": tune, "import": imported}))
"""


def test_aime_collect_tune_and_import_on_a_two_node_cluster_refuse_local_paths(tmp_path):
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
    assert codes == {"collect": 2, "tune": 2, "import": 2}, done.stderr[-3000:]
    assert done.stderr.count("the Ray cluster has 2 nodes") == 3 and "results_dir=s3://" in done.stderr
    assert f"--out={results}/store are local paths" in done.stderr  # and source=<the npz folder>
    assert not results.exists()  # refused before a run directory was made
