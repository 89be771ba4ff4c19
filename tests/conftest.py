"""Shared fixtures: a real local Ray, tiny configs, a synthetic replay store, and tiny checkpoints
(one untrained, one trained by real Ray Train + DeepSpeed steps) for evaluation and serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

from aime.checkpoints import write_model_files  # noqa: E402
from aime.config import Config, dump_yaml, load_config  # noqa: E402
from aime.replay.synthetic import write_synthetic_episodes  # noqa: E402
from aime.run.ray_init import worker_environment  # noqa: E402

# What aime's own Ray gets (aime.run.ray_init), for the session's Ray below and the commands tests run.
os.environ.update(worker_environment())


@pytest.fixture(scope="session")
def ray_local(s3_server):
    """One real local Ray for the whole session (starting one costs seconds). The S3 server starts
    first: Ray's workers inherit its AWS_* variables, so actors and trainers reach s3:// URIs too."""
    import ray

    if not ray.is_initialized():
        # "local": never a cluster another test started (ray start, cluster_utils) and left behind.
        # The worker environment reaches the workers from os.environ (above), as aime.run.ray_init does it.
        ray.init(address="local", num_cpus=2, include_dashboard=True)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def exported_metrics(ray_local):
    """``wait(name, until=bool, timeout=60, **labels)``: the sum of the samples of ``name`` whose labels
    include ``labels`` on this node's Prometheus endpoint (Ray's ``metrics_export_port``), once
    ``until(sum)`` holds. Processes hand their metrics to the node's agent every
    ``metrics_report_interval_ms`` (10 s by default), so it polls."""
    from prometheus_client.parser import text_string_to_metric_families

    node_id = ray_local.get_runtime_context().get_node_id()
    (node,) = [n for n in ray_local.nodes() if n["NodeID"] == node_id]
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"

    def wait(name: str, until=bool, timeout: float = 60, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        while True:
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
            total = sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())
            if until(total):
                return total
            seen = sorted({f"{s.name}{s.labels}={s.value}" for s in samples if "aime" in s.name})
            assert time.monotonic() < deadline, (name, labels, total, seen)
            time.sleep(1)

    return wait


@pytest.fixture
def tiny_config(tmp_path) -> Config:
    """The tiny experiment, writing under tmp_path."""
    return load_config(Config, "tiny", [f"results_dir={tmp_path / 'results'}"])


EPISODES, LENGTH = 4, 20


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    write_synthetic_episodes(root, EPISODES, length=LENGTH, image_size=32, action_dim=6)
    return root


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory, store) -> Path:
    """A checkpoint in checkpoint.py's format holding a freshly initialised tiny model: enough for
    the plumbing, seconds instead of a training run."""
    from aime.models.world_model import WorldModel

    run_dir = tmp_path_factory.mktemp("untrained")
    cfg = load_config(Config, "tiny", [f"replay.root={store}", f"results_dir={run_dir}"])
    directory = run_dir / "checkpoints" / "train" / "step00000000"
    torch.manual_seed(0)
    state = WorldModel(cfg.model).state_dict()
    write_model_files(directory, state, dump_yaml(cfg), step=0, tag="step00000000")
    return directory


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, store, ray_local) -> Path:
    """Two real Ray Train + DeepSpeed steps of the tiny model on the store (~30 s, once per session)."""
    from aime.run.rundir import create_run_dir
    from aime.train.driver import train

    results = tmp_path_factory.mktemp("results")
    cfg = load_config(
        Config,
        "tiny",
        [f"results_dir={results}", f"replay.root={store}", "train.steps=2", "model.optim.balancing.mode=sum"],
    )
    cfg, run_dir = create_run_dir(cfg)
    summary = train(cfg, run_dir, progress=False)
    assert summary.checkpoint, summary
    return Path(summary.checkpoint)


@dataclass(frozen=True)
class S3Server:
    """A real S3-compatible server on 127.0.0.1 holding one empty bucket."""

    endpoint: str  # http://127.0.0.1:<port>
    bucket: str

    def uri(self, *parts: str) -> str:
        """``s3://<bucket>/<parts...>``: what a user passes wherever aime takes a storage location."""
        return "s3://" + "/".join([self.bucket, *parts])

    def filesystem(self):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(endpoint_override=self.endpoint, allow_bucket_creation=True)

    def files(self, *parts: str) -> dict[str, int]:
        """Relative path -> size of every object under ``s3://<bucket>/<parts...>``."""
        import pyarrow.fs as pafs

        root = "/".join([self.bucket, *parts])
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        infos = self.filesystem().get_file_info(selector)
        return {i.path[len(root) + 1 :]: i.size for i in infos if i.type == pafs.FileType.File}

    def read(self, *parts: str) -> bytes:
        with self.filesystem().open_input_stream("/".join([self.bucket, *parts])) as stream:
            return stream.read()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's standalone S3 server on a free loopback port for the whole session. The AWS_* variables
    point pyarrow's ``s3://`` URIs at it (dummy credentials: nothing can reach a real account)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            break
        except OSError:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the S3 server did not answer within 60 s"
            time.sleep(0.2)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    server_info = S3Server(endpoint, "aime-test")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            server_info.filesystem().create_dir(server_info.bucket)
            yield server_info
    finally:
        server.terminate()
        server.wait(timeout=30)
