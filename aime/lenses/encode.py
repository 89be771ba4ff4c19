"""EncodeEpisodes: the Ray Data callable class that turns whole episodes into activation rows.

A plain class: ``extract.py`` hands it to ``map_batches`` (which makes the actors, on GPUs when the
cluster has them), tests call it in-process. The checkpoint is loaded once per actor.

    {"data": episode indices (n,)} --read_windows (every chunk file of each episode, whole)-->
    obs (1, T, C, H, W), action, is_first, step, concept_* --WorldModel.encode(sample=False), episodes
    of one length batched--> {name: (T, D)} --activation_table--> <out>/<split>/part-<first index>.parquet
    --> {"episode": (n,), "rows": (n,), "positives": (n, C)}: counts for the manifest, no activations
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from aime.checkpoints import load_world_model
from aime.lenses.activations import activation_table, write_part
from aime.replay.schema import CONCEPT_PREFIX
from aime.replay.store import ReplayStore
from aime.replay.windows import Window, model_inputs, read_windows


@dataclass(frozen=True)
class EpisodePlan:
    episode_id: str
    files: tuple[tuple[str, int], ...]  # (path, rows) of its chunk files, in chunk order
    split: str

    @property
    def length(self) -> int:
        return sum(rows for _, rows in self.files)


class EncodeEpisodes:
    def __init__(
        self, checkpoint: str, root: str, plan: Sequence[EpisodePlan], concepts: Sequence[str], out: str
    ):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_world_model(checkpoint).to(self.device).eval()
        self.store = ReplayStore(root)
        self.plan, self.concepts, self.out = list(plan), list(concepts), out

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = [int(i) for i in batch["data"]]
        episodes = {i: self._read(self.plan[i]) for i in indices}
        by_length: dict[int, list[int]] = defaultdict(list)
        for i in indices:
            by_length[len(episodes[i]["step"])].append(i)
        features: dict[int, dict[str, np.ndarray]] = {}
        for group in by_length.values():
            features.update(self._encode(group, episodes))
        tables: dict[str, list[pa.Table]] = defaultdict(list)
        positives = np.zeros((len(indices), len(self.concepts)), np.int64)
        for row, i in enumerate(indices):
            columns = episodes[i]
            flags = {c: columns[CONCEPT_PREFIX + c].astype(bool) for c in self.concepts}
            positives[row] = [int(flags[c].sum()) for c in self.concepts]
            table = activation_table(self.plan[i].episode_id, columns["step"], features[i], flags)
            tables[self.plan[i].split].append(table)
        for split, parts in tables.items():  # one file per (call, split): named by its first episode
            write_part(self.out, split, indices[0], pa.concat_tables(parts))
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
    def _encode(self, group: list[int], episodes: dict[int, dict[str, np.ndarray]]) -> dict[int, dict]:
        """Episodes of one length as one batch through the frozen model: {index: {name: (T, D)}}."""
        stacked = {k: np.stack([episodes[i][k] for i in group]) for k in ("pixels", "action", "is_first")}
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in model_inputs(stacked).items()}
        inputs["action"] = inputs["action"].float()
        inputs["is_first"][:, 0] = True  # an episode starts here, even a chunk-less import without the flag
        out = self.model.encode(inputs["obs"], inputs["action"], inputs["is_first"], sample=False)
        host = {name: value.float().cpu().numpy() for name, value in out.items()}  # (n, T, D)
        return {i: {name: value[b] for name, value in host.items()} for b, i in enumerate(group)}
