"""What a checkpoint directory holds, which ones are complete, and which one a path means.

    <run_dir>/checkpoints/<name>/stepNNNNNNNN/
        deepspeed/<tag>/...   the engine's state for resuming (only aime.train reads it)
        model.safetensors     consolidated fp32 weights
        config.yaml           the run's resolved config
        meta.json             {"step", "tag", "format", "metrics"}: written last, so its presence (and
                              that it parses) marks a complete save

Every file is written atomically (``aime.storage``), so a reader sees a file whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pyarrow.fs as pafs
import torch

from aime.metrics import EVAL_SCORE
from aime.storage import atomic_write, atomic_write_text, resolve_filesystem
from aime.storage.mirror import is_uri, pull

log = logging.getLogger(__name__)

META = "meta.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
FORMAT = 1


class IncompleteCheckpointError(RuntimeError):
    """The directory is not a complete aime checkpoint; the message says what is missing."""


def write_model_files(
    directory: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    config_yaml: str,
    *,
    step: int,
    tag: str,
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Weights, config, then meta.json last: a reader that finds meta.json finds the rest whole."""
    from safetensors.torch import save

    directory = Path(directory)
    weights = {k: v.detach().float().contiguous().cpu() for k, v in state_dict.items()}
    atomic_write(directory / WEIGHTS, lambda stream: stream.write(save(weights)))
    atomic_write_text(directory / CONFIG, config_yaml)
    meta = {"step": step, "tag": tag, "format": FORMAT, "metrics": dict(metrics or {})}
    atomic_write_text(directory / META, json.dumps(meta) + "\n")


def read_meta(directory: str | Path, filesystem: pafs.FileSystem | None = None) -> dict[str, Any]:
    """The checkpoint's meta.json; IncompleteCheckpointError when it is missing or unreadable.
    With ``filesystem`` (a Ray Train checkpoint's), ``directory`` is a path within it."""
    path = f"{directory}/{META}" if filesystem is not None else str(Path(directory) / META)
    try:
        if filesystem is None:
            text = Path(path).read_text()
        else:
            with filesystem.open_input_stream(path) as stream:
                text = stream.read().decode()
        meta = json.loads(text)
    except FileNotFoundError:
        raise IncompleteCheckpointError(f"{directory} has no {META}: the save did not complete") from None
    except (OSError, ValueError) as error:
        raise IncompleteCheckpointError(f"{path} is unreadable ({error}): an incomplete checkpoint") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise IncompleteCheckpointError(f"{path} has no integer 'step': not an aime checkpoint")
    return meta


def checkpoint_step(checkpoint: str | Path) -> int:
    """The step of the checkpoint directory at ``checkpoint`` (a path or URI), read where it lies: a
    URI's run is not staged (another run's staging folder on this node may be in use by that run)."""
    filesystem, path = resolve_filesystem(str(checkpoint).rstrip("/"))
    return int(read_meta(path, filesystem)["step"])


def config_hash(checkpoint: str | Path) -> str:
    """The identity of the config a checkpoint was trained with: sha256 of its config.yaml bytes,
    first 16 hex digits. Serving reports it; lens packs record it and refuse another model's."""
    return hashlib.sha256((Path(checkpoint) / CONFIG).read_bytes()).hexdigest()[:16]


def is_complete(directory: str | Path) -> bool:
    directory = Path(directory)
    try:
        read_meta(directory)
    except IncompleteCheckpointError:
        return False
    return (directory / WEIGHTS).is_file() and (directory / CONFIG).is_file()


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """A run's complete checkpoints, oldest step first; incomplete ones are skipped with a warning."""
    found = []
    # Every step folder, not only those with a meta.json: a save killed before its meta.json (written
    # last) is the usual half-written one, and it is named too.
    for directory in sorted(p for p in Path(run_dir, "checkpoints").glob("*/step*") if p.is_dir()):
        if is_complete(directory):
            found.append(directory)
        else:
            log.warning("checkpoint %s is incomplete (meta, weights or config missing): skipped", directory)
    return sorted(found, key=lambda p: read_meta(p)["step"])


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def best_checkpoint(run_dir: str | Path, score: str = EVAL_SCORE) -> Path | None:
    """The complete checkpoint with the highest ``score`` in its meta.json (ties: the newer), else the
    newest when none was scored (periodic evaluation off), or None."""
    found = complete_checkpoints(run_dir)
    scored = [(read_meta(p).get("metrics", {}).get(score), i, p) for i, p in enumerate(found)]
    scored = [entry for entry in scored if isinstance(entry[0], int | float)]
    if scored:
        return max(scored)[2]
    return found[-1] if found else None


def resolve(path: str | Path, prefer: Literal["best", "newest"] = "best") -> Path:
    """The checkpoint directory ``path`` means: itself, if it is a checkpoint, or a run directory's
    best (or newest) complete checkpoint. Raises IncompleteCheckpointError saying what to pass.

    A URI (``s3://...``) is read through its local staging copy (``aime.storage.mirror``): the run's
    model files are pulled, the checkpoint returned is the staged one."""
    if is_uri(path):
        run_uri, _, inside = str(path).rstrip("/").partition("/checkpoints/")
        try:
            path = pull(run_uri) / ("checkpoints/" + inside if inside else "")
        except FileNotFoundError as error:
            raise IncompleteCheckpointError(f"{error}: pass a run directory or a checkpoint") from None
    path = Path(path)
    if (path / META).exists() or (path / WEIGHTS).exists():
        if not is_complete(path):
            missing = [n for n in (META, WEIGHTS, CONFIG) if not (path / n).is_file()]
            raise IncompleteCheckpointError(
                f"checkpoint {path} is incomplete ({', '.join(missing) or META + ' unreadable'}): "
                "its save did not finish; pass its run directory to use the newest complete one"
            )
        return path
    if not path.is_dir():
        raise IncompleteCheckpointError(
            f"{path} is not a directory: pass a run directory (results/<run_id>) or a checkpoint "
            "(results/<run_id>/checkpoints/train/stepNNNNNNNN)"
        )
    chosen = best_checkpoint(path) if prefer == "best" else latest_checkpoint(path)
    if chosen is None:
        raise IncompleteCheckpointError(
            f"{path} is neither a checkpoint nor a run directory with a complete one "
            f"(looked for checkpoints/*/step*/{META}): train one with `aime train` or `aime run`"
        )
    return chosen


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run directory owning ``<run_dir>/checkpoints/<name>/<step>``, else the checkpoint itself."""
    checkpoint = Path(checkpoint)
    for parent in checkpoint.resolve().parents:
        if parent.name == "checkpoints":
            return parent.parent
    return checkpoint
