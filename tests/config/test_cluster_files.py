"""The cluster definitions in cluster/ are valid for the tools that read them: Ray's cluster-launcher
schema (shipped with Ray) for aws.yaml and local.yaml; the dashboard stays on loopback everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", ["aws.yaml", "local.yaml"])
def test_launcher_definitions_follow_rays_schema_and_keep_the_dashboard_private(name):
    definition = yaml.safe_load((CLUSTER / name).read_text())
    jsonschema.validate(definition, SCHEMA)
    starts = [c for c in definition["head_start_ray_commands"] if "ray start --head" in c]
    assert starts and all("--dashboard-host=127.0.0.1" in c for c in starts), starts


def test_the_aws_node_types_split_rollout_and_training():
    definition = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    types = definition["available_node_types"]
    assert definition["head_node_type"] in types
    assert types["rollout"]["resources"].get("rollout", 0) > 0 and "GPU" not in types["rollout"]["resources"]
    assert types["train"]["resources"]["GPU"] >= 1 and types["train"]["labels"]["aime/role"] == "train"


def test_a_bad_definition_is_caught_by_the_schema():
    definition = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    definition["available_node_types"]["train"]["resources"]["GPU"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(definition, SCHEMA)


def _manifest(name: str) -> dict:
    return yaml.safe_load((CLUSTER / "kuberay" / name).read_text())


def test_kuberay_manifests_run_aimes_own_entry_points():
    import shlex

    from aime.cli.common import config_from_args
    from aime.cli.main import build_parser
    from aime.run.ray_init import check_shared_storage
    from aime.serve.config import serve_config

    cluster, job, service = (_manifest(n) for n in ("raycluster.yaml", "rayjob.yaml", "rayservice.yaml"))
    assert [m["kind"] for m in (cluster, job, service)] == ["RayCluster", "RayJob", "RayService"]
    assert all(m["apiVersion"] == "ray.io/v1" for m in (cluster, job, service))
    # The job is the laptop's command line: it parses and its config loads (keys, types, ranges).
    command = shlex.split(job["spec"]["entrypoint"])
    assert command[0] == "aime"
    args, unknown = build_parser().parse_known_args(command[1:])
    args.overrides = [*args.overrides, *unknown]
    job_cfg = config_from_args(args)
    assert job_cfg.collect.resources == {"rollout": 1.0} and job_cfg.train.use_gpu is True
    assert job_cfg.results_dir.startswith("s3://")  # a multi-node run keeps its run directory shared
    check_shared_storage(job_cfg, nodes=3)
    # The service runs the Serve application with arguments aime's ServeConfig accepts.
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app["import_path"] == "aime.serve.app:build_app"
    assert serve_config(dict(app["args"])).num_gpus == 1
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    # KubeRay's format: the shell-quoted JSON that `ray start --resources=` takes.
    declared = groups["rollout"]["rayStartParams"]["resources"].strip('"').replace('\\"', '"')
    assert json.loads(declared)["rollout"] > 0
    limits = groups["train"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
