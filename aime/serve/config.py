"""The serving application's arguments: one typed config, from serve/config.yaml or ``aime serve``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aime.config.loader import ConfigError, build


@dataclass(frozen=True)
class ServeConfig:
    checkpoint: str = ""  # a run directory (its best, else newest, checkpoint) or a checkpoint directory
    prefer: Literal["best", "newest"] = "best"  # which checkpoint of a run directory
    # Concept lenses for /v1/concepts: a lens pack directory, "auto" (<run_dir>/lenses/pack when the run
    # has one, as `aime run lenses.enabled=true` writes it) or "none". Refused if trained on another model.
    lens_pack: str = "auto"
    # Dynamic batching (batcher.py): each model call takes the requests that queued while the last ran,
    # up to max_batch_size, waiting up to batch_wait_timeout_s for more; max_batch_size 1 turns it off.
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.0
    # A batch is padded to the smallest of these sizes that holds it, so the model sees a few shapes.
    batch_buckets: tuple[int, ...] = (1, 2, 4, 8, 16)
    # Request limits: frames per request, predicted frames, body size (413 above it).
    max_frames: int = 64
    max_horizon: int = 64
    max_body_bytes: int = 8 * 2**20
    # Model replicas: a GPU each when num_gpus > 0; autoscaling between min and max when they differ.
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    min_replicas: int = 1
    max_replicas: int = 1
    max_ongoing_requests: int = 64  # per model replica; more wait in Serve's queue
    # HTTP ingress replicas (JSON, PNG coding, validation; a tenth of a CPU each): more than one when a
    # fast model (a GPU) answers more requests than one Python process can parse and encode.
    ingress_replicas: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.max_batch_size < 1:
            problems.append(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if not self.batch_buckets or max(self.batch_buckets) < self.max_batch_size:
            problems.append(
                f"batch_buckets {list(self.batch_buckets)} must include a size >= max_batch_size "
                f"({self.max_batch_size})"
            )
        if self.max_ongoing_requests < self.max_batch_size:
            problems.append(
                f"max_ongoing_requests ({self.max_ongoing_requests}) must be >= max_batch_size "
                f"({self.max_batch_size}): a replica holding fewer requests cannot fill a batch"
            )
        if not 1 <= self.min_replicas <= self.max_replicas:
            problems.append(
                f"need 1 <= min_replicas <= max_replicas: {self.min_replicas}, {self.max_replicas}"
            )
        for name in ("max_frames", "max_horizon", "max_body_bytes", "ingress_replicas"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if problems:
            raise ConfigError("serve: " + "; ".join(problems))


def serve_config(args: dict[str, Any]) -> ServeConfig:
    """The config from application arguments; an unknown key or bad value names the key."""
    cfg = build(ServeConfig, args)
    if not cfg.checkpoint:
        raise ConfigError("serve: checkpoint is not set: pass a run directory or a checkpoint directory")
    return cfg
