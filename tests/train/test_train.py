"""Ray Train + DeepSpeed on 2 CPU workers, tiny model, a few steps on replay episodes."""

from __future__ import annotations

import torch

from aime.config import Config, load_config
from aime.replay.synthetic import write_synthetic_episodes
from aime.run.rundir import create_run_dir
from aime.train.checkpoint import load_world_model, read_meta
from aime.train.driver import train


def test_zero2_on_two_cpu_workers_trains_and_checkpoints(tmp_path, ray_local):
    replay = tmp_path / "replay"
    write_synthetic_episodes(replay, 4, length=24, image_size=32, action_dim=6)
    cfg = load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path / 'results'}",
            f"replay.root={replay}",
            "train.steps=2",
            "train.checkpoint_every=2",
            "train.zero_stage=2",
        ],
    )
    cfg, run_dir = create_run_dir(cfg)
    summary = train(cfg, run_dir)
    assert summary.steps == 2 and summary.checkpoint
    assert torch.isfinite(torch.tensor(summary.metrics["train/total"]))
    assert 0.0 <= summary.metrics["train/data_wait_fraction"] <= 1.0
    meta = read_meta(summary.checkpoint)
    assert meta["step"] == 2

    # The consolidated weights equal the DeepSpeed engine's module weights, so a fresh model loaded
    # from model.safetensors computes exactly what the trainer's model computes.
    model = load_world_model(summary.checkpoint)
    (states,) = (p for p in (run_dir / "checkpoints").rglob("mp_rank_00_model_states.pt"))
    engine_state = torch.load(states, map_location="cpu", weights_only=False)["module"]
    trainer_model = load_world_model(summary.checkpoint)
    trainer_model.load_state_dict(engine_state)
    obs = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    action = torch.rand(2, 4, 6) * 2 - 1
    is_first = torch.zeros(2, 4, dtype=torch.bool)
    model.eval(), trainer_model.eval()
    torch.manual_seed(0)
    ours = model(obs, action, is_first)
    torch.manual_seed(0)
    theirs = trainer_model(obs, action, is_first)
    torch.testing.assert_close(ours.reconstruction, theirs.reconstruction, rtol=0, atol=0)


def test_resume_continues_from_the_newest_checkpoint(tmp_path, ray_local):
    import json

    from aime.cli.main import main
    from aime.train.checkpoint import latest_checkpoint

    replay = tmp_path / "replay"
    write_synthetic_episodes(replay, 3, length=24, image_size=32, action_dim=6)
    base = [f"results_dir={tmp_path / 'results'}", f"replay.root={replay}", "model.optim.balancing.mode=sum"]
    assert (
        main(
            ["train", "--config", "tiny", "--no-progress", *base, "train.steps=2", "train.checkpoint_every=1"]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "results").iterdir()
    assert read_meta(latest_checkpoint(run_dir))["step"] == 2
    assert main(["train", "--resume", str(run_dir), "--no-progress", "train.steps=3"]) == 0
    newest = latest_checkpoint(run_dir)
    assert read_meta(newest)["step"] == 3
    assert json.loads((run_dir / "train.json").read_text())["steps"] == 3
    client = torch.load(
        next(newest.rglob("mp_rank_00_model_states.pt")), map_location="cpu", weights_only=False
    )
    assert client["step"] == 3 and client["lr_scheduler"]["last_epoch"] == 3  # the schedule continued


def test_metrics_reach_metrics_jsonl_and_tensorboard(tmp_path, ray_local):
    import json

    cfg, run_dir = _tiny(tmp_path, "train.steps=2", "train.log_every=1", "train.wandb=true")
    train(cfg, run_dir, progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for name in ("train/total", "train/task/elbo", "train/lr/main", "train/samples_per_second"):
        assert all(name in r for r in records), name
    assert "train/checkpoint" in records[-1]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*")), "wandb logged offline (no API key here)"
    figures = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert figures == {"loss_curves.png", "reconstructions.png", "open_loop.png", "attention.png"}


def _tiny(tmp_path, *overrides):
    replay = tmp_path / "replay"
    if not replay.exists():
        write_synthetic_episodes(replay, 3, length=20, image_size=32, action_dim=6)
    cfg = load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path / 'results'}",
            f"replay.root={replay}",
            "model.optim.balancing.mode=sum",
            *overrides,
        ],
    )
    return create_run_dir(cfg)


def test_a_worker_that_raises_once_is_replaced_and_the_run_resumes(tmp_path, ray_local):
    import json

    cfg, run_dir = _tiny(
        tmp_path,
        "train.steps=4",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.inject_failure_at_step=3",
        "train.max_failures=1",
    )
    summary = train(cfg, run_dir, progress=False)
    assert (run_dir / ".injected-failure").exists(), "the failure was injected"
    assert summary.steps == 4 and read_meta(summary.checkpoint)["step"] == 4
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # resumed from the step-2 checkpoint, not restarted from scratch


def test_zero3_is_refused_up_front_until_the_model_supports_it(tmp_path):
    import pytest

    from aime.train.driver import check_train_config

    cfg, _ = _tiny(tmp_path, "train.zero_stage=3")
    with pytest.raises(ValueError, match="train.zero_stage=3 is not supported yet"):
        check_train_config(cfg)
