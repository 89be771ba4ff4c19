"""``aime serve`` and serve/config.yaml: bad settings fail before anything starts; the server starts on
127.0.0.1, prints where, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from serve_helpers import free_port, write_lens_pack

from aime import checkpoints
from aime.cli.main import main
from aime.serve.config import ServeConfig, serve_config

CONFIG = Path(__file__).resolve().parents[2] / "serve" / "config.yaml"


def test_bad_settings_name_the_key_before_ray_starts(trained_checkpoint, capsys):
    run_dir = str(trained_checkpoint.parents[2])
    assert main(["serve", run_dir, "max_batch_sise=4"]) == 2
    assert "unknown config key 'max_batch_sise'" in capsys.readouterr().err
    assert main(["serve", run_dir, "max_batch_size=64"]) == 2
    assert "batch_buckets" in capsys.readouterr().err
    assert main(["serve", run_dir, "max_ongoing_requests=4"]) == 2
    assert "max_ongoing_requests (4) must be >= max_batch_size (16)" in capsys.readouterr().err
    assert main(["serve", str(run_dir) + "-missing"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_lens_pack_for_another_model_is_refused_naming_both_hashes(trained_checkpoint, tmp_path, capsys):
    pack = write_lens_pack(tmp_path / "pack", trained_checkpoint, config_hash="0123456789abcdef")
    assert main(["serve", str(trained_checkpoint), f"lens_pack={pack}"]) == 2
    err = capsys.readouterr().err
    assert "0123456789abcdef" in err and checkpoints.config_hash(trained_checkpoint) in err


def test_the_serve_config_file_holds_valid_application_arguments():
    config = yaml.safe_load(CONFIG.read_text())
    (app,) = config["applications"]
    assert app["import_path"] == "aime.serve.app:build_app" and config["http_options"]["host"] == "127.0.0.1"
    parsed = serve_config(app["args"])
    assert parsed.checkpoint == "results/RUN_ID" and parsed.max_batch_size == ServeConfig().max_batch_size


@pytest.mark.parametrize("direct", [False, True], ids=["through-the-proxy", "direct-port-too"])
def test_aime_serve_starts_on_loopback_and_stops_on_ctrl_c(trained_checkpoint, tmp_path, direct):
    port, direct_port = free_port(), free_port()
    env = dict(os.environ, RAY_ADDRESS="", PYTHONUNBUFFERED="1")
    command = [
        sys.executable,
        "-m",
        "aime.cli.main",
        "serve",
        str(trained_checkpoint.parents[2]),
        "--port",
        str(port),
        *(["--direct-port", str(direct_port)] if direct else []),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "(API docs:" in line or not line:
                break
        assert f"at http://127.0.0.1:{port}  (API docs: http://127.0.0.1:{port}/docs" in "".join(lines), (
            lines[-20:]
        )
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).json() == {"status": "ready"}
        if direct:  # the ingress replica itself answers on its port, the same application
            lines.append(process.stdout.readline())  # printed right after the URL line
            assert f"the ingress replica at http://127.0.0.1:{direct_port}" in "".join(lines)
            model = httpx.get(f"http://127.0.0.1:{port}/v1/model", timeout=30).json()
            assert httpx.get(f"http://127.0.0.1:{direct_port}/v1/model", timeout=30).json() == model
            # A model call through the direct port (ingress -> model over gRPC), answered alike.
            S, A = model["image_size"], model["action_dim"]
            body = {"frames": np.zeros((2, S, S, 3), np.uint8).tolist(), "actions": np.zeros((2, A)).tolist()}
            answers = [
                httpx.post(f"http://127.0.0.1:{p}/v1/encode", json=body, timeout=60)
                for p in (port, direct_port)
            ]
            assert [a.status_code for a in answers] == [200, 200]
            assert answers[0].json()["activations"] == answers[1].json()["activations"]
        stop_started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines[-20:]) + out[-2000:]
    assert "stopping" in out
    if direct:  # no draining period to wait out (Serve's default holds a direct replica 30 s)
        assert time.monotonic() - stop_started < 25


def test_direct_port_refuses_what_it_cannot_serve(trained_checkpoint, capsys, monkeypatch):
    run_dir = str(trained_checkpoint.parents[2])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    def no_ray(*args, **kwargs):
        raise AssertionError("a refused --direct-port started Ray")

    monkeypatch.setattr("aime.run.ray_init.init_ray", no_ray)
    with pytest.raises(SystemExit):
        main(["serve", run_dir, "--direct-port", "0"])
    assert "a port is 1-65535, got 0" in capsys.readouterr().err
    assert main(["serve", run_dir, "--direct-port", "8000"]) == 2  # --port's default
    assert "--direct-port must differ from --port (8000)" in capsys.readouterr().err
    assert main(["serve", run_dir, "--direct-port", "8001", "ingress_replicas=2"]) == 2
    assert "set ingress_replicas=1" in capsys.readouterr().err
    assert main(["serve", run_dir, "--direct-port", "8001", "--address", "10.0.0.1:6379"]) == 2
    assert "unset --address and RAY_ADDRESS" in capsys.readouterr().err
    assert main(["serve", run_dir, "--direct-port", str(free_port())]) == 2  # the test session's Ray runs
    assert "this process already runs one" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert main(["serve", run_dir, "--direct-port", str(busy)]) == 2
    assert f"--direct-port {busy} on 127.0.0.1 is not free" in capsys.readouterr().err
