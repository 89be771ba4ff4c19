"""``aime train`` killed with SIGKILL, then ``aime train --resume``: killed mid-run (the driver) it loses
at most one checkpoint interval; killed during a checkpoint save (driver and Train worker) it resumes
from the previous complete checkpoint; either way the resumed run continues the uninterrupted one exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import EXACT, _assert_same_steps, _records, _tiny

from aime.checkpoints import read_meta
from aime.cli.main import main
from aime.train.checkpoint import resumable_checkpoint
from aime.train.driver import complete_records, train

ONE_WORKER = (*EXACT, "train.num_workers=1")  # two workers are not the point here: half the time
INTERVAL = 2  # EXACT's train.checkpoint_every


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ray_local):
    """The uninterrupted run the killed and resumed ones must reproduce, and its replay store."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    cfg, run_dir = _tiny(tmp_path, *ONE_WORKER)
    train(cfg, run_dir, progress=False)
    return tmp_path / "replay", _records(run_dir)


def test_a_driver_killed_mid_run_resumes_losing_at_most_one_checkpoint_interval(
    tmp_path, reference, ray_local
):
    replay, uninterrupted = reference
    driver = Driver(tmp_path, replay)
    run_dir = driver.run_dir
    driver.wait_for(lambda: _last_step(run_dir) > INTERVAL)  # past the first checkpoint
    driver.kill()
    reached = _last_step(run_dir)
    resumed_from = resumable_checkpoint(run_dir)
    assert resumed_from is not None, "no checkpoint survived the kill"
    start = read_meta(resumed_from)["step"]
    assert reached < 4, "killed too late to test anything"
    assert 0 <= reached - start <= INTERVAL, (reached, start)  # steps lost
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    records = _records(run_dir)  # the resumed run's lines come last and win
    assert sorted(records) == [1, 2, 3, 4]
    _assert_same_steps(records, uninterrupted, range(start + 1, 5))  # the first loss after resume too
    assert read_meta(resumable_checkpoint(run_dir))["step"] == 4


def test_ctrl_c_stops_the_run_with_one_line_naming_the_resume_command(tmp_path, reference, ray_local):
    """Ctrl-C (SIGINT) on ``aime train``: no traceback, exit 130, the resume command on the console,
    the run's actors gone from Ray and its last checkpoint there to resume from."""
    replay, _ = reference
    driver = Driver(tmp_path, replay, overrides=("train.steps=1000",))
    run_dir = driver.run_dir
    driver.wait_for(lambda: resumable_checkpoint(run_dir) is not None)
    driver.kill(sig=signal.SIGINT)  # waits until the run's actors and placement group are gone
    assert driver.process.returncode == 130
    log = driver.log.read_text()
    assert f"aime train --resume {run_dir}" in log and "aime train: interrupted" in log, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert _last_step(run_dir) < 1000


def test_a_kill_during_a_checkpoint_save_resumes_from_the_previous_complete_one(
    tmp_path, reference, ray_local, caplog
):
    """The whole job (driver and Train worker) killed while the step-4 save has written part of its
    DeepSpeed state, as a crashed node or the OOM killer would; then resumed."""
    import logging
    import shutil
    import tempfile

    import torch

    replay, uninterrupted = reference
    driver = Driver(tmp_path, replay)
    run_dir = driver.run_dir
    driver.wait_for(lambda: _last_step(run_dir) >= 1)
    workers = driver.train_worker_pids()
    staged = Path(tempfile.gettempdir()).glob  # the worker stages each save there, then Ray uploads it
    pattern = f"aime-ckpt-{run_dir.name}-0-*/deepspeed/step00000004/*"
    driver.wait_for(lambda: any(staged(pattern)), poll=0.002)
    driver.kill(workers)
    found = {p.parents[2] for p in staged(pattern)}  # gone once uploaded
    assert len(found) == 1 and not any((p / "meta.json").exists() for p in found), "killed too late"
    (half_written,) = found  # part of a DeepSpeed state, no model files, no meta.json (written last)
    # The kill lands while the worker writes the save to its local staging folder; the copy Ray Train
    # then makes into the run's folder takes milliseconds, too short to hit. A kill during that copy
    # leaves a subset of the save's files in the run's step00000004: put this real half-written
    # save there, as such a kill would.
    planted = run_dir / "checkpoints" / "train" / "step00000004"
    assert not planted.exists()  # the upload never began
    shutil.move(half_written, planted)
    with caplog.at_level(logging.WARNING):
        resumed_from = resumable_checkpoint(run_dir)
    assert resumed_from is not None and read_meta(resumed_from)["step"] == 2
    assert f"checkpoint {planted} is incomplete" in caplog.text
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    records = _records(run_dir)
    assert sorted(records) == [1, 2, 3, 4]
    _assert_same_steps(records, uninterrupted, [3, 4])
    # The step-4 save of the resumed run replaced the half-written one whole.
    newest = resumable_checkpoint(run_dir)
    assert newest == planted and read_meta(newest)["step"] == 4
    states = torch.load(
        next(newest.rglob("mp_rank_00_model_states.pt")), map_location="cpu", weights_only=False
    )
    assert states["step"] == 4


class Driver:
    """``aime train`` as its own process, joining the session's Ray as a job (a second local Ray on
    this machine would confuse Ray Train's state queries)."""

    def __init__(self, tmp_path: Path, replay: Path, overrides: tuple[str, ...] = ()):
        import ray

        self.before = _alive()
        results = tmp_path / "results"
        command = [sys.executable, "-m", "aime.cli.main", "train", "--config", "tiny", "--no-progress"]
        command += [f"results_dir={results}", f"replay.root={replay}", "model.optim.balancing.mode=sum"]
        env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
        self.log = tmp_path / "driver.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [*command, *ONE_WORKER, *overrides], env=env, stdout=out, stderr=out
            )
        self.wait_for(lambda: any(results.glob("*/config.yaml")))
        (config,) = results.glob("*/config.yaml")
        self.run_dir = config.parent

    def wait_for(self, condition, poll: float = 0.01) -> None:
        deadline = time.monotonic() + 90
        while not condition():
            assert self.process.poll() is None, f"it ended before it could be killed:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"not there within 90 s:\n{self.log.read_text()}"
            time.sleep(poll)

    def kill(self, workers: list[int] = (), sig: int = signal.SIGKILL) -> None:
        """SIGKILL ``workers``, send the driver ``sig``, then wait until Ray has cleaned up the dead
        driver's job: its trainer, workers and their placement group (the resumed run needs their CPUs)."""
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        deadline = time.monotonic() + 60
        while (left := _alive() - self.before) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"the killed driver's actors or placement groups outlived it: {left}"

    def train_worker_pids(self) -> list[int]:
        from ray.util.state import list_actors

        actors = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
        pids = [a.pid for a in actors if a.actor_id not in self.before]
        assert len(pids) == 1, actors  # train.num_workers=1
        return pids


def _last_step(run_dir: Path) -> int:
    """The newest training step metrics.jsonl shows so far (its last line may be half written)."""
    records, _ = complete_records(run_dir / "metrics.jsonl", 0)
    return max((r["step"] for r in records if "train/total" in r), default=0)


def _alive() -> set[str]:
    """Ids of the cluster's live actors and placement groups."""
    from ray.util.state import list_actors, list_placement_groups

    actors = list_actors(filters=[("state", "=", "ALIVE")], limit=10_000)
    groups = list_placement_groups(filters=[("state", "=", "CREATED")], limit=10_000)
    return {a.actor_id for a in actors} | {g.placement_group_id for g in groups}
