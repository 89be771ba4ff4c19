"""The checkpoint door: which directory a path means, what counts as complete, and loading."""

from __future__ import annotations

import logging

import pytest
import torch

from aime import checkpoints
from aime.config import Config, dump_yaml, load_config
from aime.metrics import EVAL_SCORE
from aime.models.world_model import WorldModel


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(Config, "tiny", ["seed=11"])


def _save(run_dir, step, cfg, score=None, seed=0):
    torch.manual_seed(seed)
    state = WorldModel(cfg.model).state_dict()
    directory = run_dir / "checkpoints" / "train" / f"step{step:08d}"
    metrics = {EVAL_SCORE: score} if score is not None else None
    checkpoints.write_model_files(
        directory, state, dump_yaml(cfg), step=step, tag=f"s{step}", metrics=metrics
    )
    return directory, state


def test_a_run_directory_means_its_best_checkpoint_else_its_newest(tmp_path, cfg):
    first, _ = _save(tmp_path, 10, cfg, score=31.0)
    _save(tmp_path, 20, cfg, score=30.0)
    newest, _ = _save(tmp_path, 30, cfg)  # periodic eval off for this one: no score
    assert checkpoints.resolve(tmp_path) == first
    assert checkpoints.resolve(tmp_path, prefer="newest") == newest
    assert checkpoints.resolve(newest) == newest  # a checkpoint means itself
    unscored = tmp_path / "unscored"
    only, _ = _save(unscored, 5, cfg)
    assert checkpoints.best_checkpoint(unscored) == only


def test_incomplete_checkpoints_are_skipped_by_name_and_refused_when_named(tmp_path, cfg, caplog):
    good, _ = _save(tmp_path, 10, cfg)
    truncated, _ = _save(tmp_path, 20, cfg)
    (truncated / checkpoints.META).write_text('{"step": 2')  # a save cut off mid-write
    no_weights, _ = _save(tmp_path, 30, cfg)
    (no_weights / checkpoints.WEIGHTS).unlink()
    with caplog.at_level(logging.WARNING):
        assert checkpoints.latest_checkpoint(tmp_path) == good
    assert str(truncated) in caplog.text and str(no_weights) in caplog.text
    with pytest.raises(checkpoints.IncompleteCheckpointError, match="incomplete"):
        checkpoints.resolve(truncated)
    with pytest.raises(checkpoints.IncompleteCheckpointError, match="model.safetensors"):
        checkpoints.resolve(no_weights)
    with pytest.raises(checkpoints.IncompleteCheckpointError, match="neither a checkpoint nor a run"):
        checkpoints.resolve(tmp_path / "checkpoints")


def test_load_gives_the_saved_weights_and_config_in_eval_mode(tmp_path, cfg):
    directory, state = _save(tmp_path, 7, cfg, seed=3)
    loaded = checkpoints.load(tmp_path)
    assert loaded.path == directory and loaded.step == 7 and loaded.config == cfg
    assert not loaded.model.training
    for name, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, state[name].float(), rtol=0, atol=0)


def test_no_temporary_files_are_left_beside_a_checkpoint(tmp_path, cfg):
    directory, _ = _save(tmp_path, 1, cfg)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [checkpoints.CONFIG, checkpoints.META, checkpoints.WEIGHTS]
    )


def test_a_checkpoints_step_is_read_where_it_lies_without_staging_its_run(
    tmp_path, cfg, s3_server, monkeypatch
):
    import pyarrow.fs as pafs

    local, _ = _save(tmp_path / "run", 10, cfg)
    assert checkpoints.checkpoint_step(local) == 10
    remote = s3_server.uri("steps", "run", "checkpoints", "train", local.name)
    pafs.copy_files(str(local), remote.removeprefix("s3://"), destination_filesystem=s3_server.filesystem())
    staging = tmp_path / "staging"
    monkeypatch.setenv("AIME_STAGING_DIR", str(staging))
    assert checkpoints.checkpoint_step(remote) == checkpoints.checkpoint_step(remote + "/") == 10
    assert not staging.exists() or not any(staging.iterdir())  # another run's staging folder untouched
    with pytest.raises(checkpoints.IncompleteCheckpointError, match="no meta.json"):
        checkpoints.checkpoint_step(s3_server.uri("steps", "run", "checkpoints", "train", "step00000099"))
