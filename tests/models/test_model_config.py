import dataclasses

import pytest
from model_helpers import load_preset

from aime.config.loader import ConfigError, build, dump_yaml
from aime.models import ModelConfig


def test_default_preset_is_the_dataclass_default():
    assert load_preset("default") == ModelConfig()


def test_defaults_match_the_original():
    cfg = ModelConfig()
    got = (
        cfg.latent_dim,
        cfg.prior.components,
        cfg.perception.context_dim,
        cfg.dynamics.layers,
        cfg.attention.slots,
        cfg.attention.map_size,
        cfg.perception.codebook_size,
        cfg.optim.lr,
        cfg.optim.grad_clip,
        cfg.optim.tokenizer_lr_scale,
    )
    assert got == (36, 15, 128, 3, 6, 32, 1024, 2e-4, 5.0, 0.01), got


def test_tiny_preset_round_trips_through_yaml():
    import yaml

    tiny = load_preset("tiny")
    assert build(ModelConfig, yaml.safe_load(dump_yaml(tiny))) == tiny
    assert tiny.image_size == 32 and tiny.perception.enabled and tiny.attention.enabled


def test_unknown_key_and_bad_type_are_rejected():
    with pytest.raises(ConfigError, match="latent_dimm"):
        build(ModelConfig, {"latent_dimm": 3})
    with pytest.raises(ConfigError, match="vae.output"):
        build(ModelConfig, {"vae": {"output": "bernoulli"}})


def test_inconsistent_sizes_are_rejected():
    with pytest.raises(ValueError, match="image_size"):
        ModelConfig(image_size=48)
    with pytest.raises(ValueError, match="map_size"):
        dataclasses.replace(
            ModelConfig(), attention=dataclasses.replace(ModelConfig().attention, map_size=64)
        )
