"""How the CLI reports failures: one line by default, the traceback with -v."""

from __future__ import annotations

import json

import pytest

from aime.cli.main import main
from aime.train.driver import complete_records


def test_an_error_is_one_line_and_minus_v_adds_the_traceback(tmp_path, capsys, monkeypatch):
    # -v turns the console filters off for the rest of the process: give the value back afterwards.
    monkeypatch.setattr("aime.console.noise._enabled", True)
    missing = str(tmp_path / "no-such-run")
    assert main(["eval", missing]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback" not in err and "run with -v" in err
    assert main(["-v", "eval", missing]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback (most recent call last)" in err


def test_the_progress_reader_leaves_a_half_written_line_for_later(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "train/to')
    records, seen = complete_records(path, 0)
    assert records == [{"step": 1}] and seen == 1
    path.write_text(json.dumps({"step": 1}) + "\n" + json.dumps({"step": 2}) + "\n")
    records, seen = complete_records(path, seen)
    assert records == [{"step": 2}] and seen == 2
    assert complete_records(tmp_path / "none.jsonl", 0) == ([], 0)


BAD_INPUTS = [  # (command line after `aime`, what the message must name)
    (["collect", "--task", "cheetah-fly"], "unknown task 'cheetah-fly'"),
    (["collect", "model.latent_dim=-5"], "model.latent_dim: must be >= 1, got -5"),
    (["collect", "env.image_size=0"], "env.image_size: must be >= 1"),
    (["collect", "collect.episodes=0"], "collect.episodes: must be >= 1"),
    (["collect", "collect.workers=-2"], "collect.workers: must be >= 1"),
    (["collect", "collect.cpus_per_worker=-1"], "collect.cpus_per_worker: must be >= 0"),
    (["train", "replay.root={missing}"], "{missing}"),
    (["train", "train.eval_fraction=1.5"], "train.eval_fraction: must be in (0, 1)"),
    (["train", "model.optim.lr=-0.001"], "model.optim.lr: must be > 0"),
    (["train", "train.batch_size=0"], "train.batch_size: must be >= 1"),
    (["train", "--resume", "{missing}"], "{missing}"),
    (["run", "env.action_repeat=0"], "env.action_repeat: must be >= 1"),
    (["run", "env.task=walker-fly"], "unknown task 'walker-fly'"),
    (["run", "model.image_size=64"], "model.image_size 64 != env.image_size 32"),
    (["run", "model.loss.kl_z=-1"], "model.loss.kl_z: must be >= 0"),
    (["run", "collect.workerz=2"], "unknown config key 'collect.workerz'"),
    (["run", "train.steps=two"], "train.steps: expected int, got 'two'"),
    (["run", "model.vae.channels=[8, 0]"], "model.vae.channels: must be >= 1"),
    (["eval", "{missing}"], "{missing}"),
    (["replay", "stats", "{missing}"], "no replay store at {missing}"),
    (["lenses", "extract", "{missing}", "--out", "{out}"], "{missing}"),
    (["serve", "{missing}"], "{missing}"),
    (["model", "summary", "model.latent_dim=0"], "model.latent_dim: must be >= 1"),
]


def _ids(case):
    argv, _ = case
    return "-".join(a.split("=")[0].strip("-{}") for a in argv[:3])


@pytest.mark.parametrize("argv, names", BAD_INPUTS, ids=map(_ids, BAD_INPUTS))
def test_bad_input_is_a_clear_error_before_ray_or_a_run_directory(argv, names, tmp_path, capsys, monkeypatch):
    import aime.run.ray_init

    def ray_started(*_args, **_kwargs):
        raise AssertionError("Ray was started before the input was checked")

    monkeypatch.setattr(aime.run.ray_init, "init_ray", ray_started)
    paths = {"missing": str(tmp_path / "nonexistent"), "out": str(tmp_path / "out")}
    argv = [a.format(**paths) for a in argv]
    results = tmp_path / "results"
    takes_a_config = "--resume" not in argv and argv[0] not in ("eval", "replay", "lenses", "serve")
    config = ["--config", "tiny"] if takes_a_config else []
    overrides = [f"results_dir={results}"] if config else []
    assert main([*argv, *config, *overrides]) == 2
    err = capsys.readouterr().err
    assert names.format(**paths) in err, err
    assert not results.exists() or not any(results.iterdir()), "a run directory was left behind"
    assert not (tmp_path / "out").exists()
