"""``aime run``: collect -> train (with online collection) -> eval -> lenses, end to end, run as a user
runs it (its own process and local Ray), with a console that holds aime's lines and no known noise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from aime.cli.main import main
from aime.console import NOISE
from aime.lenses.pack import LensPack
from aime.replay import ReplayStore


def run_tiny(tmp_path, *overrides: str) -> int:
    """``aime run`` on the tiny experiment into ``tmp_path``; its exit code."""
    return main(["run", "--config", "tiny", "--no-progress", f"results_dir={tmp_path}", *overrides])


def test_aime_run_collects_trains_online_and_evaluates_with_a_readable_console(tmp_path, ray_local):
    overrides = ["train.steps=3", "train.checkpoint_every=3", "collect.online_episodes=2"]
    overrides += ["lenses.enabled=true", "lenses.epochs=2", "lenses.activations=[h, z]"]
    command = [sys.executable, "-m", "aime.cli.main", "run", "--config", "tiny", f"results_dir={tmp_path}"]
    # Its own process, joining the session's Ray as a job joins a running cluster: a second local Ray
    # on the same machine would confuse Ray Train's state queries (they find the other dashboard).
    address = ray_local.get_runtime_context().gcs_address
    env = dict(os.environ, RAY_ADDRESS=address, PYTHONUNBUFFERED="1")
    env.pop("RAY_DATA_DISABLE_PROGRESS_BARS", None)  # the user's default, not the test session's
    done = subprocess.run(
        [*command, *overrides, "collect.cpus_per_worker=0.25"],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["collect"]["episodes"] == 4
    assert summary["train"]["steps"] == 3
    online = summary["online_collect"]
    assert 1 <= online["episodes"] <= 2  # stopped with training, after the episodes in flight
    names = sorted(f.meta.episode_id for f in ReplayStore(run_dir / "replay").scan())
    assert len(names) == 4 + online["episodes"]
    # Online episodes continue the numbering: none overwrote an episode of the first phase.
    assert [n.rsplit("-", 1)[1] for n in names] == [f"{i:06d}" for i in range(len(names))]
    for key in ("eval/psnr_one_step/model", "eval/psnr_one_step/baseline"):
        assert key in summary["eval"]
    # The lens stage read the best checkpoint's activations into a pack that serving picks up.
    lenses, pack = summary["lenses"], run_dir / "lenses" / "pack"
    assert lenses["pack"] == str(pack) and (pack / "lens_eval.json").is_file()
    assert lenses["rows"]["train"] > 0 and lenses["lenses"] == 2 * len(lenses["best_activation"]) >= 2
    assert LensPack.load(pack, world_model=run_dir).lens_names[0].endswith("@h")
    out = done.stdout
    assert "online:" in out and "results in" in out and "[lenses]" in out and "aime serve" in out
    for bar in ("ep/s", "step/s", "window/s"):  # collection, training and evaluation progress
        assert bar in done.stderr, (bar, done.stderr[-2000:])
    noise = [line for line in console.splitlines() if NOISE.search(line)]
    assert not noise, noise[:10]
    assert "Exception ignored" not in console and "Traceback" not in console, console[-4000:]
    kept = (run_dir / "console.log").read_text()  # what was left out is kept with the run
    lines = [re.sub(r"^\(\w+\) ", "", line) for line in kept.splitlines() if line]  # "(pid) " of a worker
    assert "settotalmass" in kept and all(NOISE.search(line) for line in lines), lines


def test_online_collection_that_does_not_fit_the_cpus_fails_before_training(tmp_path, ray_local, capsys):
    assert run_tiny(tmp_path, "collect.online_episodes=2") != 0
    err = capsys.readouterr().err
    assert "collect.workers x collect.cpus_per_worker" in err
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "checkpoints").exists()
