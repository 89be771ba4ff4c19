"""``aime eval``: the actor in-process, the whole command on a trained checkpoint, and its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aime.cli.main import main
from aime.eval.actor import EvaluateWindows
from aime.eval.open_loop import OpenLoopConfig
from aime.replay.split import HeldOutSplit
from aime.replay.store import ReplayStore
from aime.replay.windows import plan_windows


def test_the_actor_class_scores_windows_in_process_reproducibly(store, untrained_checkpoint):
    cfg = OpenLoopConfig(context=2, horizon=3)
    plan = plan_windows(ReplayStore(store).scan(), cfg.length, 4)
    actor = EvaluateWindows(str(untrained_checkpoint), str(store), plan, cfg, seed=0)
    first = actor({"data": np.array([1, 3])})
    again = actor({"data": np.array([1, 3])})
    assert first["window"].tolist() == [1, 3]
    assert first["model/psnr"].shape == (2, 3) and first["loss/elbo/neg_elbo"].shape == (2,)
    for key, value in first.items():
        np.testing.assert_array_equal(value, again[key], err_msg=key)


def test_aime_eval_writes_model_and_baseline_curves_on_held_out_episodes(
    trained_checkpoint, store, tmp_path, capsys
):
    # 10 windows: two actor calls (8 + 2), so the driver aggregates across batches.
    argv = ["eval", str(trained_checkpoint), "--context", "3", "--horizon", "4", "--windows", "10"]
    assert main([*argv, "--no-progress"]) == 0
    run_dir = trained_checkpoint.parents[2]  # <run_dir>/checkpoints/train/stepNNNNNNNN
    report = json.loads((run_dir / "eval.json").read_text())
    assert (report["step"], report["context"], report["horizon"], report["windows"]) == (2, 3, 4, 10)
    for predictor in ("model", "baseline"):
        for metric in ("mse", "psnr", "ssim"):
            curve = report["per_step"][predictor][metric]
            assert len(curve) == 4 and all(math.isfinite(v) for v in curve), (predictor, metric)
    assert all(math.isfinite(v) for v in report["headline"].values())
    assert report["headline"]["eval/psnr_one_step/baseline"] == report["per_step"]["baseline"]["psnr"][0]
    assert {"elbo/recon", "elbo/kl_z", "elbo/neg_elbo", "task/elbo"} <= set(report["losses"])
    png = (run_dir / "psnr_horizon.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    out = capsys.readouterr().out
    assert "PSNR 1-step dB" in out and "baseline" in out

    # Held-out episodes are exactly the split's, and the split's training side never contains them.
    files = ReplayStore(store).scan()
    split = HeldOutSplit(seed=report["split"]["seed"], eval_fraction=report["split"]["eval_fraction"])
    training = {f.meta.episode_id for f in split.training_files(files)}
    assert report["split"]["held_out_episodes"] == sorted(split.held_out({f.meta.episode_id for f in files}))
    assert training.isdisjoint(report["split"]["held_out_episodes"]) and training

    # --out redirects, and the same checkpoint and plan give the same numbers.
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "eval.json").read_text())
    assert again["per_step"] == report["per_step"] and again["losses"] == report["losses"]


def test_a_bad_checkpoint_path_is_a_usage_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "no-such-checkpoint")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    assert "neither a checkpoint nor a run directory" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--episodes", "--context", "--horizon", "--windows", "--out", "--address"):
        assert option in text
