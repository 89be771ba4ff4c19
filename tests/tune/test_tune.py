"""Real Ray Tune sweeps of the tiny model on the CPU: ASHA stops weak trials, results are written and
reproducible, a failing trial is retried, an interrupted sweep resumes without rerunning trials, and
bad sweeps fail before any trial starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from aime.checkpoints import run_dir_of
from aime.cli.main import main
from aime.config import Config, ConfigError, load_config
from aime.train.schedule import warmup_cosine
from aime.tune.check import check_sweep
from aime.tune.config import load_sweep

TRIAL = (
    "train.num_workers=1",  # Tune is under test here, not data parallelism (tests/train covers that)
    "train.steps=4",
    "train.checkpoint_every=2",
    "train.log_every=2",
    "train.eval_windows=4",
    "model.optim.balancing.mode=sum",
)


def _args(store: Path, results: Path, *extra: str) -> list[str]:
    overrides = json.dumps([f"replay.root={store}", *TRIAL])
    return ["base=tiny", f"results_dir={results}", f"overrides={overrides}", *extra]


def _experiment(results: Path) -> Path:
    (found,) = results.iterdir()
    return found


def test_asha_stops_weak_trials_and_the_best_config_reproduces(store, ray_local, tmp_path, capsys):
    # Descending learning rates: after two steps each later trial trails, and ASHA stops it at its rung.
    lrs = "space.model.optim.lr={grid: [3.0e-3, 1.0e-4, 1.0e-6]}"
    outside = os.environ.get("RAY_AIR_NEW_OUTPUT")
    assert main(["tune", "--config", "lr", *_args(store, tmp_path / "sweeps", lrs, "samples=1")]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" done: ") == 3 and "best config:" in printed
    assert "Configuration for experiment" not in printed and "tensorboard --logdir" not in printed  # Tune's
    assert os.environ.get("RAY_AIR_NEW_OUTPUT") == outside  # Tune's console chosen for the sweep only
    experiment = _experiment(tmp_path / "sweeps")
    rows = (experiment / "results.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("rank,trial_id,status")
    assert any(",stopped early," in row for row in rows[1:]), rows
    assert (experiment / "metric.png").stat().st_size > 0
    best = json.loads((experiment / "best.json").read_text())
    assert best["checkpoint"] and Path(best["checkpoint"], "model.safetensors").exists()
    # best.yaml is the best trial's whole config: `aime train --config best.yaml` (the same loader)
    # builds exactly the run that trial was, up to the names of its directories.
    trial_cfg = load_config(Config, run_dir_of(best["checkpoint"]) / "config.yaml")
    again = load_config(Config, experiment / "best.yaml", [f"results_dir={trial_cfg.results_dir}"])
    assert again == replace(trial_cfg, run_id=None)
    assert again.model.optim.lr == best["params"]["model.optim.lr"]
    rerun = ["train", "--config", str(experiment / "best.yaml"), "--no-progress", "train.steps=2"]
    assert main([*rerun, f"results_dir={tmp_path / 'again'}"]) == 0


def test_pbt_moves_the_weaker_trial_onto_the_stronger_ones_checkpoint_at_its_perturbed_rate(
    store, ray_local, tmp_path
):
    # Two trials at once, two evaluations each: at an evaluation where both have scores, the one
    # behind continues from the other's checkpoint with the other's rate x 0.8 or x 1.2 (the seeded
    # draws start them 50x apart). Synchronous: with the asynchronous default a trial that starts late
    # on a busy machine meets the other's last checkpoint only (a CI run did).
    lrs = "space.model.optim.lr={loguniform: [1.0e-6, 3.0e-3]}"
    pbt = ["scheduler.name=pbt", "scheduler.quantile_fraction=0.5", "scheduler.resample_probability=0"]
    pbt += ["scheduler.synch=true"]
    args = _args(store, tmp_path / "sweeps", lrs, "samples=2", "max_concurrent_trials=2", *pbt)
    kept = ["train.keep_checkpoints=3"]  # the newest, the best, the one being adopted (TRIAL: 4 steps)
    args[2] = "overrides=" + json.dumps([*json.loads(args[2].split("=", 1)[1]), *kept])
    assert main(["tune", "--config", "lr", "--no-progress", *args]) == 0
    experiment = _experiment(tmp_path / "sweeps")
    adopters = [t for t in (experiment / "trials").iterdir() if (t / "lineage.jsonl").exists()]
    params = [(t / "params.json").read_text() for t in (experiment / "trials").iterdir()]
    assert adopters, f"no trial continued from another's checkpoint: {params}"
    # Synchronous PBT exploits the trial behind at both evaluations (Tune's own log of them). At the
    # first (step 2) it continues from the other's checkpoint; at the last (step 4) no step is left
    # to train, so that trial keeps its own run: one adoption, one Ray Train run of it.
    exploits = (experiment / "tune" / "pbt_global.txt").read_text().splitlines()
    assert len(exploits) == 2, exploits
    ((trial, lineage),) = [
        (t, [json.loads(line) for line in (t / "lineage.jsonl").read_text().splitlines()]) for t in adopters
    ]
    (entry,) = lineage
    assert entry["step"] == 2, f"the adoption should come at the first evaluation: {lineage}"
    assert (
        entry["checkpoint"].startswith(str(experiment / "trials")) and trial.name not in entry["checkpoint"]
    )
    donor_lr, lr = entry["perturbed"]["model.optim.lr"]
    assert lr / donor_lr == pytest.approx(0.8) or lr / donor_lr == pytest.approx(1.2), entry
    runs = [d.name for t in (experiment / "trials").iterdir() for d in (t / "checkpoints").iterdir()]
    assert sorted(name.split("-")[0] for name in runs) == ["adopted", "train", "train"], runs
    # The first step after adopting ran at this trial's peak rate on the donor's schedule position.
    records = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
    step = entry["step"] + 1
    first = [r for r in records if r.get("step") == step and "train/lr/main" in r][-1]
    assert first["train/lr/main"] == pytest.approx(
        lr * warmup_cosine(step, warmup_steps=1, total_steps=4, min_lr_ratio=0.1)
    )
    rows = (experiment / "results.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(",finished," in row for row in rows), rows
    # Each row is its own trial with the values it trained with last (Tune's last result of a trial
    # exploited at the end is a copy of the other's).
    trials = {row.split(",")[1]: row for row in rows}
    assert sorted(trials) == sorted(t.name for t in (experiment / "trials").iterdir()), rows
    for t, row in trials.items():
        trained = json.loads((experiment / "trials" / t / "params.json").read_text())
        assert f",{trained['model.optim.lr']}," in row, (trained, row)


def test_a_trial_that_fails_once_is_retried_and_the_sweep_finishes(store, ray_local, tmp_path, capsys):
    fail = ["train.inject_failure_at_step=3", "train.max_failures=0"]  # Ray Train gives up; Tune retries
    args = _args(store, tmp_path / "sweeps", "samples=1", "scheduler.name=none", "max_failures=1", "space={}")
    args[2] = "overrides=" + json.dumps([*json.loads(args[2].split("=", 1)[1]), *fail])
    assert main(["tune", "--config", "lr", *args]) == 0
    experiment = _experiment(tmp_path / "sweeps")
    (trial,) = (experiment / "trials").iterdir()
    assert (trial / ".injected-failure").exists()  # it did fail once
    assert ",finished," in (experiment / "results.csv").read_text()


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(store, ray_local, tmp_path):
    results = tmp_path / "sweeps"
    grid = "space.model.optim.lr={grid: [1.0e-3, 3.0e-3]}"
    command = [sys.executable, "-m", "aime.cli.main", "tune", "--config", "lr"]
    command += _args(store, results, grid, "samples=1", "scheduler.name=none")
    env = dict(os.environ, RAY_ADDRESS="", PYTHONUNBUFFERED="1")
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    done: list[str] = []
    try:
        deadline = time.monotonic() + 400
        assert driver.stdout is not None
        while not done and time.monotonic() < deadline:  # killed once the first trial finished
            line = driver.stdout.readline()
            if not line:
                break
            if " done: " in line:
                done.append(line.split(" done: ")[1].split()[0])
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    assert len(done) == 1, done
    experiment = _experiment(results)
    finished = {t: (experiment / "trials" / t / "metrics.jsonl").read_text() for t in done}
    assert main(["tune", "--resume", str(experiment), "--no-progress"]) == 0
    for trial, metrics in finished.items():  # not rerun: their records are exactly as they were
        assert (experiment / "trials" / trial / "metrics.jsonl").read_text() == metrics
    rows = (experiment / "results.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(",finished," in row for row in rows), rows


def test_a_sweep_on_shared_storage_keeps_everything_there_and_resumes_from_there(
    s3_server, ray_local, tmp_path, monkeypatch
):
    staging = tmp_path / "staging"
    monkeypatch.setenv("AIME_STAGING_DIR", str(staging))
    monkeypatch.chdir(tmp_path)
    sweeps = s3_server.uri("sweeps")
    grid = "space.model.optim.lr={grid: [1.0e-3, 3.0e-3]}"
    overrides = f"overrides={json.dumps(list(TRIAL))}"  # no replay.root: the sweep collects its data there
    args = ["base=tiny", f"results_dir={sweeps}", overrides, grid, "samples=1", "scheduler.name=none"]
    assert main(["tune", "--config", "lr", "--no-progress", *args]) == 0

    files = s3_server.files("sweeps")
    (name,) = {f.split("/")[0] for f in files}
    for report in ("sweep.yaml", "results.csv", "metric.png", "best.yaml", "best.json"):
        assert files.get(f"{name}/{report}", 0) > 0, (report, sorted(files))
    assert [f for f in files if f.startswith(f"{name}/replay/") and f.endswith(".parquet")]
    assert any(f.startswith(f"{name}/tune/") for f in files)  # Tune's state, for --resume
    trials = {f.split("/")[2] for f in files if f.startswith(f"{name}/trials/")}
    assert len(trials) == 2, sorted(files)
    for trial in trials:
        assert f"{name}/trials/{trial}/checkpoints/train/step00000004/model.safetensors" in files
    best = json.loads(s3_server.read("sweeps", name, "best.json"))
    assert best["checkpoint"].startswith(f"{sweeps}/{name}/trials/"), best
    assert best["checkpoint"].removeprefix(f"{sweeps}/") + "/model.safetensors" in files
    assert not list(tmp_path.glob("results*")) and not any(staging.iterdir())  # nothing local

    csv_before = s3_server.read("sweeps", name, "results.csv")
    assert main(["tune", "--resume", f"{sweeps}/{name}", "--no-progress"]) == 0  # nothing left to run
    rows = s3_server.read("sweeps", name, "results.csv").decode().splitlines()[1:]
    assert len(rows) == 2 and all(",finished," in row for row in rows), rows
    assert s3_server.read("sweeps", name, "results.csv") == csv_before
    assert not any(staging.iterdir())


def test_a_bad_sweep_fails_before_any_trial_names_what_is_wrong(tmp_path):
    base = ["base=tiny", "space={}"]
    with pytest.raises(ConfigError, match="unknown config key 'model.optim.lrr'"):
        check_sweep(load_sweep("lr", [*base, "space.model.optim.lrr={choice: [0.1]}"]))
    with pytest.raises(ConfigError, match="space.model.latent_dim.*expected int"):
        check_sweep(load_sweep("lr", [*base, "space.model.latent_dim={choice: [8, big]}"]))
    with pytest.raises(ConfigError, match="metric 'eval/psnr' is not reported.*eval/psnr_gain_one_step"):
        check_sweep(load_sweep("lr", ["base=tiny", "metric=eval/psnr"]))
    with pytest.raises(ConfigError, match="unknown config key 'sampels'"):
        load_sweep("lr", ["sampels=3"])
    with pytest.raises(ConfigError, match="time_budget_s must be > 0"):
        load_sweep("lr", ["time_budget_s=0"])
    with pytest.raises(ConfigError, match="named sweeps: .*lr"):
        load_sweep("no-such-sweep")
    assert main(["tune", "--config", "lr", "metric=eval/psnr"]) == 2


def test_a_pbt_sweep_that_cannot_work_fails_before_any_trial_and_says_why():
    pbt = ["base=tiny", "scheduler.name=pbt", "samples=2", "max_concurrent_trials=2", "space={}"]
    steps = [
        "overrides=[train.steps=6, train.checkpoint_every=2, train.num_workers=1, train.keep_checkpoints=3]"
    ]
    lr = "space.model.optim.lr={loguniform: [1.0e-4, 1.0e-2]}"
    with pytest.raises(ConfigError, match="space.model.latent_dim: PBT cannot change it"):
        check_sweep(load_sweep("lr", [*pbt, *steps, "space.model.latent_dim={choice: [8, 16]}"]))
    with pytest.raises(ConfigError, match="at most 1 runs at once"):
        check_sweep(load_sweep("lr", [*pbt, *steps, lr, "max_concurrent_trials=1"]))
    with pytest.raises(ConfigError, match=r"perturbation_interval \(3\) must be below the 3 periodic"):
        check_sweep(load_sweep("lr", [*pbt, *steps, lr, "scheduler.perturbation_interval=3"]))
    with pytest.raises(ConfigError, match="runs 2 trials at once .* but the Ray cluster has 1"):
        check_sweep(load_sweep("lr", [*pbt, *steps, lr]), {"CPU": 1.0})
    with pytest.raises(ConfigError, match=r"train.keep_checkpoints \(2\) must be >= 3"):
        check_sweep(load_sweep("lr", [*pbt, lr, "overrides=[train.steps=6, train.checkpoint_every=2]"]))
    with pytest.raises(ConfigError, match="quantile_fraction must be in"):
        load_sweep("lr", [*pbt, "scheduler.quantile_fraction=0.9"])
    check_sweep(load_sweep("lr", [*pbt, *steps, lr]), {"CPU": 2.0})  # this one is fine
