"""ServedModel: one world model answering batches of encode / imagine requests. A plain class (no Ray,
no HTTP): ``app.py`` wraps it in a Serve deployment, tests call it in-process.

    encode:  [frames (T, S, S, 3) uint8, actions (T, A), is_first (T,)] x n --group by T-->
             pad to a bucket size --WorldModel.encode--> [{name: (T, D) float32}] x n
    imagine: [context (Tc, S, S, 3), context actions (Tc, A), future actions (H, A), temperature, seed]
             x n --group by (Tc, H, temperature)--> pad --WorldModel.imagine under per-sample noise-->
             [(H, S, S, 3) uint8] x n

Requests of one shape share a model call; each group is padded (by repeating its last request) to the
smallest bucket that holds it, so the model sees a few batch sizes only. Each imagined sample draws
its noise from its own seed (``aime.models.noise``), so a request's frames never depend on what it
was batched with: the same request and seed give the same frames.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from aime import checkpoints
from aime.models.noise import per_sample_noise

R = TypeVar("R")


@dataclass(frozen=True)
class Served(Generic[R]):
    """One request's answer from a batched model call, with what that call cost (Server-Timing)."""

    value: R
    batch_size: int  # requests in the model call that answered this one (before padding to a bucket)
    model_ms: float  # that call's time on the replica


@dataclass(frozen=True)
class EncodeItem:
    frames: np.ndarray  # (T, S, S, 3) uint8
    actions: np.ndarray  # (T, A) float32
    is_first: np.ndarray  # (T,) bool


@dataclass(frozen=True)
class ImagineItem:
    context_frames: np.ndarray  # (Tc, S, S, 3) uint8
    context_actions: np.ndarray  # (Tc, A) float32
    future_actions: np.ndarray  # (H, A) float32
    temperature: float
    seed: int


class ServedModel:
    def __init__(
        self,
        checkpoint: str,
        *,
        prefer: str = "best",
        buckets: Sequence[int] = (1, 2, 4, 8, 16),
        lens_pack: str | None = None,
    ):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        loaded = checkpoints.load(checkpoint, self.device, prefer=prefer)  # type: ignore[arg-type]
        self.model, self.cfg, self.path, self.step = loaded.model, loaded.config, loaded.path, loaded.step
        self.buckets = tuple(sorted(buckets))
        self.config_hash = checkpoints.config_hash(self.path)
        self.lenses = None if lens_pack is None else _load_pack(lens_pack, self.path, self.device)
        S, A = self.cfg.model.image_size, self.cfg.model.action_dim
        probe = EncodeItem(np.zeros((1, S, S, 3), np.uint8), np.zeros((1, A), np.float32), np.ones(1, bool))
        self.activation_names = sorted(self.encode([probe])[0])  # also warms the model up

    def info(self) -> dict[str, Any]:
        return {
            "checkpoint": str(Path(self.path).resolve()),
            "step": self.step,
            "config_hash": self.config_hash,
            "task": self.cfg.env.task,
            "image_size": self.cfg.model.image_size,
            "action_dim": self.cfg.model.action_dim,
            "activations": self.activation_names,
            "concepts": self.lenses.lens_names if self.lenses else [],
            "lens_pack": _pack_summary(self.lenses),
            "device": str(self.device),
        }

    @torch.inference_mode()
    def encode(self, items: Sequence[EncodeItem]) -> list[dict[str, np.ndarray]]:
        def run(group: list[EncodeItem]) -> list[dict[str, np.ndarray]]:
            obs = self._frames(np.stack([i.frames for i in group]))  # (B, T, 3, S, S)
            action = self._tensor(np.stack([i.actions for i in group]))  # (B, T, A)
            is_first = torch.from_numpy(np.stack([i.is_first for i in group])).to(self.device)  # (B, T)
            features = self.model.encode(obs, action, is_first)  # name -> (B, T, D)
            host = {name: value.float().cpu().numpy() for name, value in features.items()}
            return [{name: value[b] for name, value in host.items()} for b in range(len(group))]

        return self._grouped(items, lambda i: i.frames.shape[0], run)

    @torch.inference_mode()
    def concepts(self, items: Sequence[EncodeItem]) -> list[dict[str, dict[str, Any]]]:
        """Per item, {lens name: {"probability": (T,) float32, "graduated": bool}} from the lens pack."""
        assert self.lenses is not None, "ServedModel has no lens pack"
        out = []
        for features in self.encode(items):
            tensors = {k: torch.from_numpy(v).to(self.device) for k, v in features.items()}  # (T, D) each
            out.append(self.lenses.named_scores(tensors))
        return out

    @torch.inference_mode()
    def imagine(self, items: Sequence[ImagineItem]) -> list[np.ndarray]:
        def run(group: list[ImagineItem]) -> list[np.ndarray]:
            obs = self._frames(np.stack([i.context_frames for i in group]))  # (B, Tc, 3, S, S)
            context_action = self._tensor(np.stack([i.context_actions for i in group]))  # (B, Tc, A)
            future_action = self._tensor(np.stack([i.future_actions for i in group]))  # (B, H, A)
            with per_sample_noise([i.seed for i in group], self.device):
                frames = self.model.imagine(obs, context_action, future_action, group[0].temperature)
            frames = (frames * 255.0).round().clamp(0, 255).to(torch.uint8)  # (B, H, 3, S, S)
            return list(frames.permute(0, 1, 3, 4, 2).cpu().numpy())  # (H, S, S, 3) each

        key = lambda i: (i.context_frames.shape[0], i.future_actions.shape[0], float(i.temperature))  # noqa: E731
        return self._grouped(items, key, run)

    def _grouped(
        self, items: Sequence[Any], key: Callable[[Any], Hashable], run: Callable[[list], list[R]]
    ) -> list[R]:
        """Run each group of same-shaped items as one padded batch; results in the items' order."""
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            groups[key(item)].append(index)
        out: list[Any] = [None] * len(items)
        for indices in groups.values():
            for start in range(0, len(indices), self.buckets[-1]):
                chunk = indices[start : start + self.buckets[-1]]
                size = next(b for b in self.buckets if b >= len(chunk))
                padded = [items[i] for i in chunk] + [items[chunk[-1]]] * (size - len(chunk))
                for i, result in zip(chunk, run(padded), strict=False):
                    out[i] = result
        return out

    def _frames(self, frames: np.ndarray) -> torch.Tensor:
        """(B, T, S, S, 3) uint8 images -> (B, T, 3, S, S) uint8 on the device."""
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3))).to(self.device)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, np.float32)).to(self.device)


def _load_pack(directory: str, checkpoint: Path, device: torch.device) -> Any:
    """The lens pack, refused (PackMismatchError, naming both hashes) if trained on another model."""
    from aime.lenses.pack import LensPack
    from aime.storage.mirror import is_uri, pull

    local = pull(directory) if is_uri(directory) else directory  # a run on shared storage
    return LensPack.load(local, world_model=checkpoint, device=device)


def _pack_summary(pack: Any) -> dict[str, Any] | None:
    if pack is None:
        return None
    return {"name": pack.info.get("name"), "config_hash": pack.config_hash, "lenses": len(pack.lens_names)}
