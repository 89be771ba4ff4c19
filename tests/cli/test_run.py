"""``aime run``: collect -> train (with online collection) -> eval, end to end on the local Ray."""

from __future__ import annotations

import json

from aime.cli.main import main
from aime.replay import ReplayStore


def run_tiny(tmp_path, *overrides: str) -> int:
    """``aime run`` on the tiny experiment into ``tmp_path``; its exit code."""
    return main(["run", "--config", "tiny", "--no-progress", f"results_dir={tmp_path}", *overrides])


def test_aime_run_collects_trains_online_and_evaluates(tmp_path, ray_local, capsys):
    overrides = ["train.steps=3", "train.checkpoint_every=3", "collect.online_episodes=2"]
    lenses = ["lenses.enabled=true", "lenses.epochs=2", "lenses.activations=[h, z]"]
    assert run_tiny(tmp_path, *overrides, *lenses, "collect.cpus_per_worker=0.25") == 0
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
    assert summary["lenses"]["lenses"] >= 1 and (run_dir / "lenses" / "pack" / "pack.json").exists()
    out = capsys.readouterr().out
    assert "online:" in out and "results in" in out and "[lenses]" in out


def test_online_collection_that_does_not_fit_the_cpus_fails_before_training(tmp_path, ray_local, capsys):
    assert run_tiny(tmp_path, "collect.online_episodes=2") != 0
    err = capsys.readouterr().err
    assert "collect.workers x collect.cpus_per_worker" in err
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "checkpoints").exists()
