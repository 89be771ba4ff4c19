"""Typed configuration: YAML presets composed into frozen dataclasses, with dotted overrides.

Composition order (later wins):

1. ``cluster/configs/default.yaml``;
2. for each group (``env``, ``model``, ``train``) the preset named in ``defaults:``, merged under
   that group's key (``env/cheetah-run.yaml`` becomes ``env: {...}``);
3. the experiment file given with ``--config``, whose own ``defaults:`` may pick other presets;
4. command-line overrides: ``env=walker-walk`` picks a preset, ``env.image_size=96`` sets a value.

The result is validated against the dataclass schema: an unknown key or a value of the wrong type
raises :class:`ConfigError` naming the key and listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aime.config.ranges import out_of_range

T = TypeVar("T")

# The presets ship inside the package (a wheel and `ray job submit` with a pip runtime_env find them);
# cluster/configs in a checkout is a link to this folder, the place users edit.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
GROUPS = ("env", "model", "train")


class ConfigError(ValueError):
    """A configuration value, key or file is invalid; the message names it."""


def load_config(
    schema: type[T],
    experiment: str | Path | None = None,
    overrides: Sequence[str] = (),
    config_dir: str | Path | None = None,
) -> T:
    """Compose default + presets + experiment + overrides and validate against ``schema``."""
    config_dir = Path(config_dir) if config_dir else CONFIG_DIR
    base = read_yaml(config_dir / "default.yaml")
    choices = dict(base.pop("defaults", None) or {})
    body: dict[str, Any] = {}
    if experiment is not None:
        body = read_yaml(_resolve_experiment(experiment, config_dir))
        choices.update(body.pop("defaults", None) or {})

    values: list[tuple[str, Any]] = []
    for item in overrides:
        key, value = parse_override(item)
        if key in GROUPS and isinstance(value, str) and (config_dir / key / f"{value}.yaml").exists():
            choices[key] = value
        else:
            values.append((key, value))

    merged = base
    for group, preset in choices.items():
        if group not in GROUPS:
            raise ConfigError(f"defaults: unknown group {group!r}; valid groups: {', '.join(GROUPS)}")
        merged = deep_merge(merged, {group: _read_preset(config_dir, group, preset)})
    merged = deep_merge(merged, body)
    for key, value in values:
        merged = deep_merge(merged, _nest(key, value))
    return build(schema, merged)


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, bools, lists, null)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def build(schema: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build dataclass ``schema`` from ``data``, checking every key and type."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(schema)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"under {path!r}" if path else "at the top level"
        raise ConfigError(
            f"unknown config key {_join(path, unknown[0])!r}; valid keys {where}: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(hints[name], value, _join(path, name)) for name, value in data.items()}
    for name, value in kwargs.items():
        if message := out_of_range(_join(path, name), value):
            raise ConfigError(message)
    try:
        return schema(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path or '<root>'}: {error}") from error


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable dict of a config dataclass (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{path}: {value!r} matches none of {_type_name(hint)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list, Sequence):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list ({_type_name(hint)}), got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(value_type, v, f"{path}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {hint.__name__}, got the bool {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def _read_preset(config_dir: Path, group: str, name: str) -> dict[str, Any]:
    path = config_dir / group / f"{name}.yaml"
    if not path.exists():
        valid = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
        raise ConfigError(f"unknown {group} preset {name!r}; valid presets: {', '.join(valid)}")
    return read_yaml(path)


def _resolve_experiment(experiment: str | Path, config_dir: Path) -> Path:
    path = Path(experiment)
    if path.exists():
        return path
    named = config_dir / "experiment" / f"{experiment}.yaml"
    if named.exists():
        return named
    valid = sorted(p.stem for p in (config_dir / "experiment").glob("*.yaml"))
    raise ConfigError(
        f"experiment config {str(experiment)!r} not found; named experiments: {', '.join(valid)}"
    )
