"""Ray Train + DeepSpeed on 2 CPU workers, tiny model, a few steps on replay episodes."""

from __future__ import annotations

import pstats

import pytest
import torch

from aime.checkpoints import load_world_model, read_meta
from aime.config import Config, load_config
from aime.replay.synthetic import write_synthetic_episodes
from aime.run.rundir import create_run_dir
from aime.train.driver import train


def test_zero2_on_two_workers_trains_logs_and_checkpoints_the_trainers_weights(
    tmp_path, ray_local, exported_metrics
):
    import json

    from aime.run import ray_metrics as R

    cfg, run_dir = _tiny(
        tmp_path,
        "train.steps=2",
        "train.log_every=1",
        "train.wandb=true",
        "train.profile_step=2",
        "train.profile_startup=true",
    )
    assert (cfg.train.zero_stage, cfg.train.num_workers) == (2, 2)  # the tiny preset's defaults
    summary = train(cfg, run_dir, progress=False)
    assert summary.steps == 2 and read_meta(summary.checkpoint)["step"] == 2
    assert torch.isfinite(torch.tensor(summary.metrics["train/total"]))
    assert 0.0 <= summary.metrics["train/data_wait_fraction"] <= 1.0
    train_json = json.loads((run_dir / "train.json").read_text())
    assert 0 < train_json["seconds_to_first_step"] == summary.seconds_to_first_step < 600
    # Where start-up went, rank 0's phases in order; together they are the seconds to the first step
    # (the phases are rounded to 0.1 s, and the report reaches the driver's metrics file after the step).
    startup = train_json["startup"]
    phases = ["driver", "worker_spawn", "worker_init", "imports", "device", "model"]
    phases += ["compile_setup", "engine", "periodic_eval", "first_batch", "first_step"]
    assert list(startup) == ["total", *phases, "overlapped_stream_ready"]
    assert startup["total"] == summary.seconds_to_first_step and startup["engine"] > 0
    assert 0 < sum(startup[phase] for phase in phases) <= startup["total"] + 0.5
    assert 0 < startup["overlapped_stream_ready"] <= startup["total"]
    # The dashboard's series (ray.util.metrics, from this driver) hold the run's last report.
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = {k: v for record in records for k, v in record.items()}
    last[R.TRAIN_CHECKPOINT_TIMESTAMP] = max(r["time"] for r in records if "train/checkpoint" in r)
    for key, name in {**R.TRAIN_GAUGES, R.TRAIN_CHECKPOINT_TIMESTAMP: R.TRAIN_CHECKPOINT_TIMESTAMP}.items():
        assert key in last and last[key] != 0, (key, sorted(last))
        same = pytest.approx(last[key], rel=1e-9)  # an export before the last report holds the one before
        exported_metrics(R.exported_name(name), until=lambda v, same=same: v == same, run_id=run_dir.name)
    _assert_consolidated_weights_are_the_engines(summary.checkpoint, run_dir)
    assert [r["step"] for r in records] == [1, 2]
    for name in ("train/total", "train/task/elbo", "train/lr/main", "train/samples_per_second"):
        assert all(name in r for r in records), name
    # Each interval's end on the worker's clock, before the controller stamped the record's arrival.
    ends = [r["train/interval_end"] for r in records]
    assert ends == sorted(ends) and all(r["train/interval_end"] <= r["time"] + 1e-3 for r in records)
    diagnostics = (
        "train/elbo/kl_z_per_dim",
        "train/prior/effective_components",
        "train/perception/perplexity",
    )
    for name in diagnostics:
        assert all(r[name] > 0 for r in records), name
    assert all(0 <= r["train/elbo/active_dims"] <= 8 for r in records)  # tiny: latent_dim 8
    assert "train/checkpoint" in records[-1]
    # The checkpoint's record carries the periodic evaluation on the fixed held-out windows.
    assert records[-1]["eval/windows"] == 6  # 1 held-out episode of 20 steps: 6 windows of 5 + 10
    assert records[-1]["eval/psnr_one_step/model"] > 0 and records[-1]["eval/psnr_one_step/baseline"] > 0
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*")), "wandb logged offline (no API key here)"
    figures = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert figures == {"loss_curves.png", "reconstructions.png", "open_loop.png", "attention.png"}
    # train.profile_step: rank 0's step 2 under torch.profiler (no kernels on the CPU)
    profile = json.loads((run_dir / "profile" / "step2.json").read_text())
    assert profile["step"] == 2 and profile["wall_ms"] > 0 and profile["kernels"] == 0
    assert set(profile["phase_wall_ms"]) == {"fetch", "forward", "balance", "backward", "optimizer_step"}
    assert sum(profile["phase_wall_ms"].values()) <= profile["wall_ms"]
    assert profile["cpu_self_ms_by_op"]
    assert (run_dir / "profile" / "step2.trace.json.gz").stat().st_size > 0
    # train.profile_startup: rank 0's start-up under cProfile, DeepSpeed's engine and the first step in it
    startup_profile = pstats.Stats(str(run_dir / "profile" / "startup_rank0.pstats"))
    profiled = {name for (_, _, name) in startup_profile.stats}  # type: ignore[attr-defined]
    assert {"build_engine", "train_microbatch"} <= profiled
    assert "build_engine" in (run_dir / "profile" / "startup_rank0.txt").read_text()
    assert not (run_dir / "profile" / "startup_rank1.txt").exists()


def _assert_consolidated_weights_are_the_engines(checkpoint, run_dir) -> None:
    """model.safetensors equals the DeepSpeed engine's module weights: a fresh model loaded from it
    computes exactly what the trainer's model computes."""
    model = load_world_model(checkpoint)
    (states,) = (p for p in (run_dir / "checkpoints").rglob("mp_rank_00_model_states.pt"))
    engine_state = torch.load(states, map_location="cpu", weights_only=False)["module"]
    trainer_model = load_world_model(checkpoint)
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


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, ray_local):
    """A 4-step run logging every step: the reference the interrupted runs must reproduce exactly."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    cfg, run_dir = _tiny(tmp_path, *EXACT)
    train(cfg, run_dir, progress=False)
    return tmp_path / "replay", _records(run_dir)


EXACT = ("train.steps=4", "train.checkpoint_every=2", "train.log_every=1", "seed=7")


def _records(run_dir):
    import json

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, lines) if "train/total" in r}


def _assert_same_steps(records, reference, steps):
    for step in steps:
        for key in ("train/total", "train/elbo/recon", "train/elbo/kl_z", "train/lr/main", "train/grad_norm"):
            assert records[step][key] == pytest.approx(reference[step][key], rel=1e-5, abs=1e-6), (step, key)


def test_a_worker_that_raises_once_is_replaced_and_the_run_resumes(tmp_path, uninterrupted):
    replay, reference = uninterrupted
    cfg, run_dir = _tiny(
        tmp_path, *EXACT, f"replay.root={replay}", "train.inject_failure_at_step=3", "train.max_failures=1"
    )
    summary = train(cfg, run_dir, progress=False)
    assert (run_dir / ".injected-failure").exists(), "the failure was injected"
    assert summary.steps == 4 and read_meta(summary.checkpoint)["step"] == 4
    records = _records(run_dir)
    assert sorted(records) == [1, 2, 3, 4]  # resumed from the step-2 checkpoint, not restarted from scratch
    # The replaced worker continued the data order, RNG, optimizer and schedule of an uninterrupted run.
    _assert_same_steps(records, reference, [1, 2, 3, 4])


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tmp_path, uninterrupted, caplog, capsys):
    import json
    import logging
    import shutil
    import tempfile
    from pathlib import Path

    from aime.checkpoints import latest_checkpoint
    from aime.cli.main import main

    replay, reference = uninterrupted
    cfg, run_dir = _tiny(
        tmp_path, *EXACT, f"replay.root={replay}", "train.inject_failure_at_step=3", "train.max_failures=0"
    )
    with pytest.raises(RuntimeError, match="training failed"):
        train(cfg, run_dir, progress=False)  # the run dies after its step-2 checkpoint
    assert sorted(_records(run_dir)) == [1, 2]
    # A complete checkpoint Ray Train never registered (copied in) is not resumed from: DeepSpeed's
    # loader unpickles. A truncated one is skipped too. Both are named in a warning.
    registered = latest_checkpoint(run_dir)
    assert read_meta(registered)["step"] == 2
    stray = registered.parent / "step00000099"
    shutil.copytree(registered, stray)
    (stray / "meta.json").write_text(json.dumps({"step": 99, "tag": "step00000002", "format": 1}))
    truncated = registered.parent / "step00000050"
    shutil.copytree(stray, truncated)
    (truncated / "meta.json").write_text('{"step": 5')
    # A save a killed worker left in the temp dir is removed when the run is resumed.
    left_behind = Path(tempfile.mkdtemp(prefix=f"aime-ckpt-{run_dir.name}-0-"))
    (left_behind / "mp_rank_00_model_states.pt").write_bytes(b"\0" * 64)
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert not left_behind.exists()
    assert f"{stray} was not registered by Ray Train" in caplog.text and str(truncated) in caplog.text
    records = _records(run_dir)
    assert sorted(records) == [1, 2, 3, 4]
    _assert_same_steps(records, reference, [3, 4])  # loss at step k+1 equals the uninterrupted run's
    shutil.rmtree(stray), shutil.rmtree(truncated)
    newest = latest_checkpoint(run_dir)
    assert read_meta(newest)["step"] == 4 and json.loads((run_dir / "train.json").read_text())["steps"] == 4
    client = torch.load(
        next(newest.rglob("mp_rank_00_model_states.pt")), map_location="cpu", weights_only=False
    )
    assert client["step"] == 4 and client["lr_scheduler"]["last_epoch"] == 4  # the schedule continued
    # Every save was staged in the temp dir and removed once Ray Train persisted it.
    assert not list(Path(tempfile.gettempdir()).glob(f"aime-ckpt-{run_dir.name}-*"))
    # Resuming the finished run as it is: refused before Ray Train starts, naming the override.
    files = sorted((f, f.stat().st_mtime_ns) for f in run_dir.rglob("*"))
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    assert "already trained to step 4 (train.steps=4)" in (error := capsys.readouterr().err), error
    assert f"aime train --resume {run_dir} train.steps=8" in error
    assert sorted((f, f.stat().st_mtime_ns) for f in run_dir.rglob("*")) == files


def test_rows_gathered_by_the_trainer_train_exactly_as_the_default_stream(tmp_path, uninterrupted):
    # replay.gather=reader: the stream carries plans, the trainer copies the rows from the frame cache
    # (iter_gathered); the windows, so the losses, are the default stream's.
    replay, reference = uninterrupted
    cache = tmp_path / "frame_cache"
    cfg, run_dir = _tiny(
        tmp_path, *EXACT, f"replay.root={replay}", f"replay.frame_cache={cache}", "replay.gather=reader"
    )
    assert train(cfg, run_dir, progress=False).steps == 4
    assert list(cache.glob("*.frames"))  # the sampler actors decoded episodes for the trainer
    _assert_same_steps(_records(run_dir), reference, [1, 2, 3, 4])


def test_an_empty_replay_store_fails_at_once_saying_what_to_do(tmp_path, ray_local):
    (tmp_path / "empty").mkdir()
    cfg, run_dir = _tiny(tmp_path, f"replay.root={tmp_path / 'empty'}")
    with pytest.raises(ValueError, match="no training episodes .* `aime collect"):
        train(cfg, run_dir, progress=False)
    assert not (run_dir / "checkpoints").exists()


def test_asking_for_more_gpus_than_the_cluster_has_fails_at_once(tmp_path, ray_local):
    cfg, run_dir = _tiny(tmp_path, "train.use_gpu=true", "train.num_workers=2")
    with pytest.raises(ValueError, match="needs 2 GPUs, but the Ray cluster has 0.*lower train.num_workers"):
        train(cfg, run_dir, progress=False)
    assert not (run_dir / "checkpoints").exists()
