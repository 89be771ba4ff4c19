"""``aime collect`` end to end on a real local Ray, including a worker killed mid-collection."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pyarrow.parquet as pq
import pytest

from aime.actors.collect import actor_name, collect
from aime.cli.main import main
from aime.config import Config, load_config
from aime.replay import ReplayStore
from aime.replay.schema import check_schema
from aime.run.ray_metrics import ENV_WORKER_FAILURES, exported_name
from aime.run.rundir import create_run_dir


def _complete_episodes(root: str) -> dict[str, int]:
    """episode id -> rows, checking every file is a complete, valid episode file."""
    out = {}
    for path in ReplayStore(root).list_names():
        table = pq.read_table(path)
        meta = check_schema(table.schema)
        assert table.num_rows == meta.length and table.column("is_last").to_pylist()[-1], path
        out[meta.episode_id] = table.num_rows
    return out


def test_collect_cli_writes_exactly_the_requested_episodes(tmp_path, ray_local, capsys):
    out = tmp_path / "replay"
    code = main(
        [
            "collect",
            "--config",
            "tiny",
            "--episodes",
            "5",
            "--workers",
            "2",
            "--envs-per-worker",  # 5 episodes, 2 actors: batches of 3 and 2, not 4 and 1
            "4",
            "--out",
            str(out),
            "--no-progress",
            f"results_dir={tmp_path / 'results'}",
            "env.max_episode_steps=15",
            "env.action_repeat=2",
        ]
    )
    assert code == 0
    actors = {check_schema(pq.read_schema(p)).actor_id for p in ReplayStore(str(out)).list_names()}
    assert actors == {0, 1}, "both actors got episodes"
    episodes = _complete_episodes(str(out))
    assert len(episodes) == 5 and set(episodes.values()) == {16}
    assert not [p for p in os.listdir(out) if p.startswith(".")], "no temporary file is left behind"
    (run_dir,) = (tmp_path / "results").iterdir()
    for name in ("config.yaml", "versions.json", "seeds.json", "metrics.jsonl", "collect.json"):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "collect.json").read_text())
    assert summary["episodes"] == 5 and summary["steps"] == 75 and summary["bytes"] > 0
    # A frame is one rendered observation: console, summary and metrics count 75, physics steps 150.
    assert summary["physics_steps"] == 150 and summary["frames_per_second"] == summary["steps_per_second"]
    assert "frames        75 " in capsys.readouterr().out
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["env/episodes"] == 5 and last["env/steps"] == 75 and last["env/frames"] == 75


@pytest.mark.parametrize("max_restarts", [3, 0], ids=["ray-restarts-actor", "driver-replaces-actor"])
def test_killing_a_worker_mid_collection_still_yields_every_episode(
    tmp_path, ray_local, exported_metrics, max_restarts
):
    cfg = load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path}",
            # Five episodes queued per worker: the victim still holds work when the kill lands, even
            # on a loaded machine where steps_done() waits for one of its episodes to end first.
            "collect.episodes=10",
            "collect.workers=2",
            "env.max_episode_steps=100",
            f"collect.max_restarts={max_restarts}",
        ],
    )
    cfg, _ = create_run_dir(cfg)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=collect(cfg, progress=False)))
    thread.start()
    victim = _wait_for_actor(ray_local, actor_name(cfg.run_id, 0))
    pid = ray_local.get(victim.ready.remote())["pid"]
    _wait_until(lambda: ray_local.get(victim.steps_done.remote()) > 10)
    os.kill(pid, signal.SIGKILL)  # a crash mid-episode, as an OOM kill or a segfault would be
    thread.join(timeout=240)
    assert not thread.is_alive(), "collection did not finish"
    summary = result["summary"]
    assert summary.episodes == 10
    episodes = _complete_episodes(cfg.replay.root)
    assert len(episodes) == 10 and set(episodes.values()) == {101}
    if max_restarts == 0:
        assert summary.worker_failures >= 1
        # The Ray dashboard's series counts the same recoveries (aime.run.ray_metrics).
        failures = exported_name(ENV_WORKER_FAILURES)
        count = summary.worker_failures
        exported_metrics(failures, until=lambda n: n == count, run_id=cfg.run_id, phase="rollout")


def _wait_for_actor(ray, name: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ray.get_actor(name)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_unknown_task_bad_key_and_bad_type_are_clear_cli_errors(tmp_path, capsys):
    base = ["collect", "--config", "tiny", "--no-progress", f"results_dir={tmp_path}"]
    assert main([*base, "--task", "cheetah-fly"]) == 2
    assert "unknown task 'cheetah-fly'; valid tasks:" in capsys.readouterr().err
    assert main([*base, "collect.workerz=2"]) == 2
    assert "unknown config key 'collect.workerz'" in capsys.readouterr().err
    assert main([*base, "collect.workers=two"]) == 2
    assert "collect.workers: expected int, got 'two'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [[], ["collect"], ["train"], ["run"], ["replay"], ["replay", "stats"], ["model", "summary"]]
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: aime" in capsys.readouterr().out


def test_an_actor_ray_cannot_place_is_named_with_what_it_needs_and_starts_once_freed(
    tmp_path, ray_local, caplog
):
    from ray.util.placement_group import placement_group, remove_placement_group

    cfg = load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path}",
            "collect.episodes=1",
            "collect.workers=1",
            "env.max_episode_steps=10",
            "collect.placement_warning_s=1",
            "log_every_seconds=0.5",
        ],
    )
    cfg, _ = create_run_dir(cfg)
    _wait_until(lambda: ray_local.available_resources().get("CPU", 0) >= 1)  # earlier tests' actors gone
    holder = placement_group([{"CPU": ray_local.available_resources()["CPU"]}])  # every free CPU, held
    ray_local.get(holder.ready(), timeout=60)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=collect(cfg, progress=False)))
    caplog.set_level("WARNING", logger="aime.actors.placement")
    thread.start()
    try:
        _wait_until(lambda: any("not started" in r.getMessage() for r in caplog.records), timeout=60)
    finally:
        remove_placement_group(holder)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the collection did not go on once the CPUs were free"
    assert result["summary"].episodes == 1
    (warning,) = [r.getMessage() for r in caplog.records if "not started" in r.getMessage()]
    assert actor_name(cfg.run_id, 0) in warning and "each needs CPU 1;" in warning
    assert "CPU 0 free of 2" in warning and "lower collect.workers" in warning


def test_an_actor_no_node_can_hold_is_told_apart_from_one_waiting_for_freed_resources(ray_local):
    from aime.actors.placement import unplaced_message
    from aime.actors.remote import actor_request
    from aime.config import CollectConfig

    message = unplaced_message(["a"], actor_request(CollectConfig(cpus_per_worker=64)), waited=61)
    assert "not started after 61 s" in message and "each needs CPU 64;" in message
    assert "no node has that much" in message and "lower collect.cpus_per_worker" in message
    gpus = unplaced_message(["a"], actor_request(CollectConfig(resources={"rollout": 1})), waited=5)
    assert "rollout 0 free of 0" in gpus and "fix collect.resources" in gpus
