from __future__ import annotations

import typing

import pytest
import yaml

from aime.config import Config, ConfigError, load_config
from aime.run.rundir import create_run_dir


def test_defaults_compose_presets_experiment_and_overrides():
    cfg = load_config(Config, "tiny", ["env=walker-walk", "env.image_size=48", "seed=7", "collect.workers=3"])
    assert cfg.env.task == "walker-walk"  # preset chosen on the command line beats the experiment's
    assert cfg.env.image_size == 48
    assert cfg.seed == 7 and cfg.collect.workers == 3
    assert cfg.train.batch_size == 4  # from train/tiny.yaml via the experiment's defaults
    assert cfg.model.image_size == 32  # from model/tiny.yaml
    assert load_config(Config, None, ["model=tiny"]).model == cfg.model


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ConfigError) as error:
        load_config(Config, None, ["env.tsk=cheetah-run"])
    message = str(error.value)
    assert "env.tsk" in message and "image_size" in message and "task" in message


def test_wrong_type_names_key_and_type():
    with pytest.raises(ConfigError, match=r"env\.image_size: expected int, got 'big'"):
        load_config(Config, None, ["env.image_size=big"])
    with pytest.raises(ConfigError, match="collect.episodes"):
        load_config(Config, None, ["collect.episodes=true"])


def test_literal_and_preset_errors_list_choices():
    with pytest.raises(ConfigError, match="zstd"):
        load_config(Config, None, ["replay.compression=gzip9"])
    with pytest.raises(ConfigError, match="unknown experiment|not found"):
        load_config(Config, "no-such-experiment")
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(Config, None, ["seed"])


def test_every_preset_and_experiment_loads():
    from aime.config.loader import CONFIG_DIR

    for group in ("env", "model", "train"):
        for preset in sorted((CONFIG_DIR / group).glob("*.yaml")):
            load_config(Config, None, [f"{group}={preset.stem}"])
    for experiment in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        load_config(Config, experiment)


def test_run_dir_holds_resolved_config_versions_and_seeds(tmp_path):
    cfg = load_config(Config, "tiny", [f"results_dir={tmp_path}", "seed=11"])
    cfg, run_dir = create_run_dir(cfg)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["seed"] == 11 and saved["run_id"] == cfg.run_id
    assert saved["replay"]["root"] == str(run_dir / "replay")
    # The saved config is complete: it loads back into the same Config.
    assert load_config(Config, run_dir / "config.yaml") == cfg
    versions = yaml.safe_load((run_dir / "versions.json").read_text())
    for key in ("python", "torch", "ray", "mujoco", "dm_control", "git_commit"):
        assert key in versions


def test_overrides_may_come_before_and_after_flags(tmp_path, capsys):
    from aime.cli.main import main

    # `model summary` parses the config without starting anything.
    assert (
        main(["model", "summary", "--config", "tiny", "seed=3", "--seq-len", "4", "model.latent_dim=4"]) == 0
    )
    assert "latent 4" in capsys.readouterr().out
    import pytest

    with pytest.raises(SystemExit):
        main(["model", "summary", "--config", "tiny", "--bogus-flag"])


def test_train_option_conflicts_name_the_keys():
    with pytest.raises(ConfigError, match="compile_rollout"):
        load_config(Config, None, ["train.zero_stage=3", "train.compile_rollout=reduce-overhead"])
    assert load_config(Config, None, ["train.zero_stage=3"]).train.compile_rollout == "auto"  # eager there
    with pytest.raises(ConfigError, match="grad_accum"):
        load_config(
            Config,
            None,
            ["train.zero_stage=1", "train.grad_accum=2", "train.compile_rollout=reduce-overhead"],
        )
    with pytest.raises(ConfigError, match="profile_step"):
        load_config(Config, None, ["train.steps=10", "train.profile_step=11"])


def test_every_range_names_a_real_key_and_every_preset_is_in_range():
    import dataclasses

    from aime.config import Config
    from aime.config.ranges import RANGES

    def keys(schema, prefix=""):
        for f in dataclasses.fields(schema):
            hint = typing.get_type_hints(schema)[f.name]
            if dataclasses.is_dataclass(hint):
                yield from keys(hint, f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}"

    known = set(keys(Config))
    assert not set(RANGES) - known, sorted(set(RANGES) - known)
    for preset in (None, "tiny", "quickstart", "gpu", "multinode"):  # the loader checks every range on load
        load_config(Config, preset, [])
