"""EncodeEpisodes: the Ray Data callable class that turns whole episodes into activation rows.

A plain class: ``extract.py`` hands it to ``map_batches`` (which makes the actors, on GPUs when the
cluster has them), tests call it in-process. The checkpoint is loaded once per actor.

    {"data": episode indices (n,)} --read_windows (every chunk file of each episode, whole)-->
    obs (1, T, C, H, W), action, is_first, step, concept_* --spans: the whole episode, or windows of
    perception.max_frames with a quarter of burn-in--> WorldModel.encode(sample=False), spans of one
    length batched --> {name: (T, D)} --activation_table--> <out>/<split>/part-<first index>.parquet
    --> {"episode": (n,), "rows": (n,), "positives": (n, C)}: counts for the manifest, no activations
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from aime import checkpoints
from aime.lenses.activations import activation_table, write_part
from aime.replay.schema import CONCEPT_PREFIX
from aime.replay.store import ReplayStore
from aime.replay.windows import Window, model_inputs, read_windows
from aime.storage.mirror import private_staging


@dataclass(frozen=True)
class EpisodePlan:
    episode_id: str
    files: tuple[tuple[str, int], ...]  # (path, rows) of its chunk files, in chunk order
    split: str

    @property
    def length(self) -> int:
        return sum(rows for _, rows in self.files)


@dataclass(frozen=True)
class Span:
    """One model call's share of an episode: rows [start, start + length) encoded, [keep, end) kept."""

    episode: int  # plan index
    start: int
    length: int
    keep: int  # first row kept; the rows before it only warm the state up (burn-in)


def spans(episode: int, T: int, window: int | None) -> list[Span]:
    """Windows covering rows 0..T-1 once: the whole episode when it fits ``window`` (or no limit),
    else windows of ``window`` rows whose first quarter re-reads the previous window's end."""
    if window is None or T <= window:
        return [Span(episode, 0, T, 0)]
    burn_in = window // 4
    out, kept = [Span(episode, 0, window, 0)], window
    while kept < T:
        start = min(kept - burn_in, T - window)
        out.append(Span(episode, start, window, kept))
        kept = start + window
    return out


class EncodeEpisodes:
    def __init__(
        self, checkpoint: str, root: str, plan: Sequence[EpisodePlan], concepts: Sequence[str], out: str
    ):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        with private_staging():  # a shared-storage URI: its model files are read, then removed
            self.model = checkpoints.load(checkpoint, self.device, prefer="newest").model
        self.store = ReplayStore(root)
        self.plan, self.concepts, self.out = list(plan), list(concepts), out
        perception = self.model.cfg.perception
        # The perception stream has learned positions for max_frames steps: longer episodes go in windows.
        self.window = perception.max_frames if perception.enabled else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = [int(i) for i in batch["data"]]
        episodes = {i: self._read(self.plan[i]) for i in indices}
        by_length: dict[int, list[Span]] = defaultdict(list)
        for i in indices:
            for span in spans(i, len(episodes[i]["step"]), self.window):
                by_length[span.length].append(span)
        parts: dict[int, list[tuple[int, dict[str, np.ndarray]]]] = defaultdict(list)
        for group in by_length.values():  # spans of one length: one model call
            for span, encoded in zip(group, self._encode(group, episodes), strict=True):
                parts[span.episode].append((span.keep, encoded))
        tables: dict[str, list[pa.Table]] = defaultdict(list)
        positives = np.zeros((len(indices), len(self.concepts)), np.int64)
        for row, i in enumerate(indices):
            columns = episodes[i]
            flags = {c: columns[CONCEPT_PREFIX + c].astype(bool) for c in self.concepts}
            positives[row] = [int(flags[c].sum()) for c in self.concepts]
            ordered = [encoded for _, encoded in sorted(parts[i], key=lambda p: p[0])]
            joined = {name: np.concatenate([e[name] for e in ordered]) for name in ordered[0]}
            table = activation_table(self.plan[i].episode_id, columns["step"], joined, flags)
            tables[self.plan[i].split].append(table)
        for split, split_tables in tables.items():  # one file per (call, split), named by its first episode
            write_part(self.out, split, indices[0], pa.concat_tables(split_tables))
        return {
            "episode": np.asarray(indices, np.int64),
            "rows": np.asarray([len(episodes[i]["step"]) for i in indices], np.int64),
            "positives": positives,
        }

    def _read(self, episode: EpisodePlan) -> dict[str, np.ndarray]:
        """Every column the lenses need of a whole episode, chunks joined: (T, ...) each."""
        columns = ["pixels", "action", "is_first", "step", *(CONCEPT_PREFIX + c for c in self.concepts)]
        parts = [
            read_windows(self.store, [Window(path, 0, episode.episode_id)], rows, columns)
            for path, rows in episode.files
        ]
        return {name: np.concatenate([p[name][0] for p in parts]) for name in columns}

    @torch.inference_mode()
    def _encode(self, group: list[Span], episodes: dict[int, dict[str, np.ndarray]]) -> list[dict]:
        """Spans of one length as one batch through the frozen model: their kept rows {name: (K, D)}."""
        keys = ("pixels", "action", "is_first")
        stacked = {
            k: np.stack([episodes[s.episode][k][s.start : s.start + s.length] for s in group]) for k in keys
        }
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in model_inputs(stacked).items()}
        inputs["action"] = inputs["action"].float()
        inputs["is_first"][:, 0] = True  # the model starts here: an episode's first row or a window's
        out = self.model.encode(inputs["obs"], inputs["action"], inputs["is_first"], sample=False)
        host = {name: value.float().cpu().numpy() for name, value in out.items()}  # (n, T, D)
        return [{name: v[b, s.keep - s.start :] for name, v in host.items()} for b, s in enumerate(group)]
