"""Typed configuration (``schema``) and its YAML composition (``loader``)."""

from aime.config.loader import ConfigError, build, dump_yaml, load_config, parse_override, to_dict
from aime.config.schema import CollectConfig, Config, EnvConfig, RayConfig, ReplayConfig, TrainConfig

__all__ = [
    "CollectConfig",
    "Config",
    "ConfigError",
    "EnvConfig",
    "RayConfig",
    "ReplayConfig",
    "TrainConfig",
    "build",
    "dump_yaml",
    "load_config",
    "parse_override",
    "to_dict",
]
