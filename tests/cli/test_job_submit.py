"""``ray job submit`` runs aime's entry points unchanged on a cluster started with ``ray start`` (issue 15):
a real head on 127.0.0.1 in a temporary folder, Ray's token authentication on (as ``ray start``
enables it), the job CLI, a small ``aime collect`` and a small ``aime run``, then the head stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # where `ray` and `aime` are installed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_dashboard(url: str, head: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/api/version", timeout=2).close()
            return
        except urllib.error.HTTPError:  # answering (401 without a token): it is up
            return
        except OSError:
            assert head.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the head's dashboard did not answer within 120 s"
            time.sleep(0.5)


@pytest.fixture
def ray_head(tmp_path):
    """``ray start --head --block`` (its own HOME for the auth token, its own short temp folder);
    stopping the blocking process stops this head alone (``ray stop`` would stop every Ray here)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "MUJOCO_GL": "egl"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RAY_AUTH_MODE"] = "token"  # what cluster/README.md tells users to keep on
    env.pop("RAY_ADDRESS", None)
    # The token the head requires and the job CLI sends: ~/.ray/auth_token of this HOME.
    generate = [str(BIN / "ray"), "get-auth-token", "--generate"]
    subprocess.run(generate, env=env, check=True, capture_output=True)
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # Ray's socket paths must stay short
    dashboard = _free_port()
    log = tmp_path / "head.log"
    # Every port this head binds is a free one: another Ray on the machine (the test session's) holds
    # the defaults, and a head whose job agent cannot bind its port never accepts a job.
    ports = {
        "port": _free_port(), "dashboard-port": dashboard, "dashboard-agent-listen-port": _free_port(),
        "dashboard-agent-grpc-port": _free_port(), "runtime-env-agent-port": _free_port(),
        "metrics-export-port": _free_port(), "ray-client-server-port": _free_port(),
    }  # fmt: skip
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", "--num-cpus=2", f"--temp-dir={temp}", "--disable-usage-stats",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    with open(log, "wb") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_dashboard(url, head, log)
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no job API
            urllib.request.urlopen(url + "/api/jobs/", timeout=10)
        assert refused.value.code in (401, 403)
        yield url, env
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop(head: subprocess.Popen) -> None:
    """Stop the head and every process it started (its own session): SIGTERM to all at once, SIGKILL
    to what is left after 5 s (a test cluster: nothing of it is kept). (SIGTERM to ``ray start --block``
    alone stops them one by one, each after its own grace period: about 30 s.)"""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            head.poll()
            if not _running_in_group(head.pid):
                return
            time.sleep(0.2)


def _running_in_group(group: int) -> bool:
    """Whether a process of process group ``group`` still runs (zombies waiting for a parent's wait()
    do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _submit(url: str, env: dict[str, str], *entrypoint: str) -> str:
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", url, "--", *entrypoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
        )
        output = done.stdout + done.stderr
        # A head that has just started answers before its job agent is up: Ray says to try again.
        if "No available agent" not in output or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert done.returncode == 0 and "succeeded" in output.lower(), output[-4000:]
    return output


def test_ray_job_submit_runs_aime_collect_and_aime_run(ray_head, tmp_path):
    url, env = ray_head
    results = tmp_path / "results"
    _submit(url, env, "aime", "collect", "--config", "tiny", "--no-progress", f"results_dir={results}")
    (collected,) = results.iterdir()
    assert json.loads((collected / "collect.json").read_text())["episodes"] == 4
    assert len(list((collected / "replay").rglob("*.parquet"))) == 4

    output = _submit(
        url, env, "aime", "run", "--config", "tiny", "--no-progress", f"results_dir={results}",
        "run_id=submitted", "train.steps=2", "train.num_workers=1", "train.eval_windows=4",
    )  # fmt: skip
    assert "joining Ray at" in output  # the job's driver joined the head instead of starting a Ray
    summary = json.loads((results / "submitted" / "summary.json").read_text())
    assert summary["train"]["steps"] == 2 and summary["eval"]  # trained, then evaluated
