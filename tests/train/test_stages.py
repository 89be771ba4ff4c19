"""Tokenizer pre-training as a stage of aime train, and a world-model run that loads and freezes it."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from aime.checkpoints import WEIGHTS
from aime.config import Config, load_config
from aime.models.world_model import WorldModel
from aime.replay.synthetic import write_synthetic_episodes
from aime.run.rundir import create_run_dir
from aime.train.driver import check_train_config, train
from aime.train.stages import prepare_model

TOKENIZER = "perception.tokenizer."


def _cfg(tmp_path, *overrides):
    replay = tmp_path / "replay"
    if not replay.exists():
        write_synthetic_episodes(replay, 3, length=20, image_size=32, action_dim=6)
    return load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path / 'results'}",
            f"replay.root={replay}",
            "model.optim.balancing.mode=sum",
            "train.steps=2",
            "train.num_workers=1",  # stages are under test, not data parallelism
            *overrides,
        ],
    )


def _split(weights):
    tokenizer = {k: v for k, v in weights.items() if k.startswith(TOKENIZER)}
    rest = {k: v for k, v in weights.items() if not k.startswith(TOKENIZER)}
    return tokenizer, rest


def _changed(a, b):
    return {k for k in a if not (a[k] == b[k]).all()}


def test_tokenizer_stage_then_world_model_with_the_tokenizer_frozen(tmp_path, ray_local):
    import torch

    from aime.run.seeding import derive_seed

    cfg, run_dir = create_run_dir(_cfg(tmp_path, "train.stage=tokenizer"))
    summary = train(cfg, run_dir, progress=False)
    assert "train/tokenizer/recon" in summary.metrics and "train/elbo/recon" not in summary.metrics
    pretrained = load_file(str(summary.checkpoint + "/" + WEIGHTS))
    torch.manual_seed(derive_seed(cfg.seed, "model"))  # the workers' initial weights
    initial = {k: v.float() for k, v in WorldModel(cfg.model).state_dict().items()}
    tok_after, rest_after = _split(pretrained)
    tok_before, rest_before = _split(initial)
    assert _changed(tok_after, tok_before), "the tokenizer learned"
    # Nothing else moved (spectral-norm estimates and other buffers included: frozen means eval mode).
    assert not _changed(rest_after, rest_before)
    assert {p.name for p in (run_dir / "figures").glob("*.png")} == {"loss_curves.png"}

    cfg2, run_dir2 = create_run_dir(_cfg(tmp_path, f"train.tokenizer_checkpoint={run_dir}"))
    summary2 = train(cfg2, run_dir2, progress=False)
    trained = load_file(str(summary2.checkpoint + "/" + WEIGHTS))
    tok_final, rest_final = _split(trained)
    assert not _changed(tok_final, tok_after), "the pre-trained tokenizer stayed frozen"
    assert _changed(rest_final, rest_before), "the rest of the world model trained"


def test_stage_configuration_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="model.perception.enabled=true"):
        check_train_config(_cfg(tmp_path, "train.stage=tokenizer", "model.perception.enabled=false"))
    with pytest.raises(ValueError, match="train.stage=tokenizer` first"):
        check_train_config(_cfg(tmp_path, f"train.tokenizer_checkpoint={tmp_path / 'nowhere'}"))
    with pytest.raises(ValueError, match="unknown value|expected one of|stage"):
        _cfg(tmp_path, "train.stage=vae")


def test_a_tokenizer_of_another_shape_is_refused_with_the_reason(tmp_path):
    from safetensors.torch import save_file

    from aime.config import dump_yaml

    cfg = _cfg(tmp_path, "model.perception.codebook_size=16")
    other = tmp_path / "other"
    other.mkdir()
    save_file(
        {k: v.contiguous() for k, v in WorldModel(cfg.model).state_dict().items()}, str(other / WEIGHTS)
    )
    (other / "config.yaml").write_text(dump_yaml(cfg))
    (other / "meta.json").write_text('{"step": 1, "tag": "step00000001", "format": 1}\n')
    mine = _cfg(tmp_path, f"train.tokenizer_checkpoint={other}")
    with pytest.raises(ValueError, match="does not fit this model"):
        prepare_model(WorldModel(mine.model), mine)
