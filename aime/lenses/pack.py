"""Lens packs: a trained bank and everything needed to trust it, in a folder (never a pickle).

    <pack>/pack.json           format, world model (checkpoint, step, config hash, task), concept
                               definitions, lenses (concept, activation, input dim, normalisation,
                               metrics, graduated), skipped concepts, training config, dtype, created-at
    <pack>/lenses.safetensors  the bank's stacked weights (written first; pack.json last marks it whole)

A pack reads activations of exactly one world model: ``LensPack.load(pack, world_model=checkpoint)``
refuses a checkpoint whose config hash (``aime.checkpoints.config_hash``) differs, naming both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch
from torch import Tensor

from aime import checkpoints
from aime.lenses.bank import LensBank, LensSpec
from aime.storage import atomic_write, atomic_write_text
from aime.storage.location import is_file, join, read_bytes, read_text

PACK_JSON = "pack.json"
WEIGHTS = "lenses.safetensors"
FORMAT = 1
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class PackMismatchError(ValueError):
    """The pack was trained on another world model's activations."""


@dataclass
class LensPack:
    info: dict[str, Any]  # pack.json
    bank: LensBank

    @property
    def config_hash(self) -> str:
        return str(self.info["world_model"]["config_hash"])

    @property
    def lens_names(self) -> list[str]:
        return [s.name for s in self.bank.specs]

    def check(self, world_model_hash: str, world_model: str = "the world model") -> None:
        check_hash(self.info, world_model_hash, world_model)

    @torch.no_grad()
    def score(self, activations: Mapping[str, Tensor]) -> Tensor:
        """Probabilities (..., N) from activations {name: (..., D)}: (B, D) or (B, T, D) alike."""
        first = activations[self.bank.specs[0].activation]
        lead = first.shape[:-1]
        flat = {a: activations[a].reshape(-1, activations[a].shape[-1]) for a in self.bank.activations}
        return torch.sigmoid(self.bank.eval()(flat).float()).reshape(*lead, len(self.bank.specs))

    def named_scores(self, activations: Mapping[str, Tensor]) -> dict[str, dict[str, Any]]:
        """{lens name: {"probability": (...,) float32 numpy, "graduated": bool}}: what a server answers."""
        probabilities = self.score(activations).cpu().numpy()
        return {
            spec.name: {"probability": probabilities[..., i], "graduated": bool(lens.get("graduated"))}
            for i, (spec, lens) in enumerate(zip(self.bank.specs, self.info["lenses"], strict=True))
        }

    def save(self, directory: str | Path, dtype: str = "float32", fs: pafs.FileSystem | None = None) -> str:
        """Weights, then pack.json: a reader that finds pack.json finds the weights whole. ``directory``
        is a local path or URI, or a path within ``fs``."""
        from safetensors.torch import save

        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
        directory = str(directory).rstrip("/")
        weights = {
            k: v.detach().to(DTYPES[dtype]).contiguous().cpu() for k, v in self.bank.state_dict().items()
        }
        atomic_write(f"{directory}/{WEIGHTS}", lambda stream: stream.write(save(weights)), fs=fs)
        info = {**self.info, "format": FORMAT, "dtype": dtype}
        atomic_write_text(f"{directory}/{PACK_JSON}", json.dumps(info, indent=2) + "\n", fs=fs)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        world_model: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> LensPack:
        """The pack; with ``world_model`` (a checkpoint or run directory), checked against it first."""
        from safetensors.torch import load

        info = read_info(directory)
        if world_model is not None:
            checkpoint = checkpoints.resolve(world_model)
            check_hash(info, checkpoints.config_hash(checkpoint), str(checkpoint))
        keys = ("concept", "activation", "input_dim", "standardise")
        specs = [LensSpec(**{k: lens[k] for k in keys}) for lens in info["lenses"]]
        bank = LensBank(specs, dropout=float(info.get("training", {}).get("dropout", 0.1)))
        bank.to(DTYPES[info.get("dtype", "float32")])
        bank.load_state_dict(load(read_bytes(join(directory, WEIGHTS))))  # safetensors: nothing is unpickled
        return cls(info, bank.to(device).eval())


def check_hash(info: dict[str, Any], world_model_hash: str, world_model: str = "the world model") -> None:
    """Refuse a world model other than the one the pack's lenses were trained on."""
    expected = info["world_model"]["config_hash"]
    if world_model_hash != expected:
        raise PackMismatchError(
            f"lens pack {info.get('name', '')!r} was trained on a world model with config hash "
            f"{expected} ({info['world_model']['checkpoint']}), but {world_model} has config hash "
            f"{world_model_hash}: extract and train lenses for this model"
        )


def read_info(directory: str | Path) -> dict[str, Any]:
    """pack.json of the pack at ``directory`` (a path or a shared-storage URI)."""
    path = join(directory, PACK_JSON)
    if not is_file(path):
        raise FileNotFoundError(
            f"{directory} is not a lens pack (no {PACK_JSON}): train one with `aime lenses train`"
        )
    info = json.loads(read_text(path))
    if info.get("format") != FORMAT:
        raise ValueError(f"{path}: lens pack format {info.get('format')}, this aime reads {FORMAT}")
    return info


def concept_definitions(task: str, concepts: list[str]) -> dict[str, dict[str, Any]]:
    """What each concept means: its rule from ``aime/envs/concepts/<task>.yaml`` when the task has one,
    else the replay column it was read from."""
    from aime.envs.concepts import ConceptSet

    try:
        rules = {rule.name: rule for rule in ConceptSet.for_task(task).rules}
    except ValueError:
        rules = {}
    out: dict[str, dict[str, Any]] = {}
    for name in concepts:
        rule = rules.get(name)
        out[name] = {"column": f"concept_{name}", "task": task}
        if rule is not None:
            out[name].update(quantity=rule.quantity, above=rule.above, below=rule.below)
    return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
