"""``aime lenses extract`` on the driver: plan whole episodes, encode them on Ray Data actors, write the
manifest. Only episode indices and counts cross processes; actors read frames and write Parquet.

    run dir | checkpoint --aime.checkpoints.resolve--> checkpoint, config
    replay store listing --group chunk files by episode--> episodes --LensSplit + HeldOutSplit.of(cfg)-->
        train / validation / test --> [EpisodePlan] (longest first: balanced actor calls)
    episode indices (id_block_dataset) --map_batches(EncodeEpisodes, CPU or GPU actors)--> Parquet parts
    counts --> activations.json (written last)
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from aime import checkpoints
from aime.lenses.activations import MANIFEST, SPLITS, Manifest, SplitSummary
from aime.lenses.encode import EncodeEpisodes, EpisodePlan
from aime.lenses.split import LensSplit
from aime.replay.dataset import id_block_dataset
from aime.replay.split import HeldOutSplit
from aime.replay.store import EpisodeFile, checkpoint_episodes
from aime.storage import resolve_filesystem
from aime.storage.location import join, list_files, remove
from aime.storage.mirror import shared_location

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractOptions:
    out: str
    episodes: str | None = None  # replay store; None: the checkpoint's replay.root
    split: LensSplit = field(default_factory=LensSplit)
    episodes_per_call: int = 4  # episodes one actor encodes (and writes) per call
    actors: int | None = None  # None: one per GPU on a GPU cluster, one CPU actor otherwise
    max_episodes: int | None = None  # the first N episodes by id (quick looks); None: all


def extract(checkpoint: str | Path, options: ExtractOptions) -> Manifest:
    """Encode the store's episodes with the checkpoint's frozen world model; returns the manifest."""
    started = time.monotonic()
    path = checkpoints.resolve(checkpoint)
    cfg = checkpoints.checkpoint_config(path)
    listing = checkpoint_episodes(cfg.replay.root, options.episodes, str(path))
    root, files = listing.root, listing.files
    episodes = _episodes(files)
    if options.max_episodes:
        episodes = dict(sorted(episodes.items())[: options.max_episodes])
    held_out = HeldOutSplit.of(cfg)
    assigned = options.split.assign(episodes, held_out)
    concepts = list(files[0].meta.concepts)
    plan = [
        EpisodePlan(episode_id, tuple((f.path, f.num_rows) for f in episodes[episode_id]), split)
        for split, ids in assigned.items()
        for episode_id in ids
    ]
    plan.sort(key=lambda e: (-e.length, e.episode_id))  # equal lengths meet in one call: one batch
    out = join(options.out)  # a path or a shared-storage URI, where every encoding actor writes
    for split in SPLITS:  # a re-run replaces the whole dataset, never mixes two
        remove(join(out, split))
    remove(join(out, MANIFEST))
    model = shared_location(path)  # what actors on any node load
    log.info(
        "lenses extract: %d episodes (%s)", len(plan), ", ".join(f"{k} {len(v)}" for k, v in assigned.items())
    )
    counts = _encode_all(model, root, plan, concepts, out, options)
    dims = _activation_dims(out)
    manifest = Manifest(
        checkpoint=model,
        step=int(checkpoints.read_meta(path)["step"]),
        config_hash=checkpoints.config_hash(path),
        task=cfg.env.task,
        episodes_root=str(root),
        activations=dims,
        concepts=concepts,
        splits=_summaries(plan, assigned, counts, concepts),
        held_out=sorted(held_out.held_out(episodes)),
        skipped_files=listing.skipped,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest.write(out)
    log.info(
        "lenses extract: %d rows in %.1f s",
        sum(s.rows for s in manifest.splits.values()),
        time.monotonic() - started,
    )
    return manifest


def _episodes(files: list[EpisodeFile]) -> dict[str, list[EpisodeFile]]:
    """Chunk files by episode id, in chunk order; files must agree on the concepts they carry."""
    grouped: dict[str, list[EpisodeFile]] = defaultdict(list)
    concepts = files[0].meta.concepts
    for f in files:
        if f.meta.concepts != concepts:
            raise ValueError(
                f"{f.path} carries concepts {f.meta.concepts}, {files[0].path} {concepts}: "
                "one activations dataset needs one concept set (one task); pass --episodes of one task"
            )
        grouped[f.meta.episode_id].append(f)
    return {k: sorted(v, key=lambda f: f.meta.chunk_index) for k, v in grouped.items()}


def _encode_all(
    checkpoint: str,
    root: str,
    plan: list[EpisodePlan],
    concepts: list[str],
    out: str,
    options: ExtractOptions,
) -> dict[int, tuple[int, np.ndarray]]:
    """{episode index: (rows, positives (C,))}, every episode encoded exactly once."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    dataset = id_block_dataset(
        np.arange(len(plan), dtype=np.int64),
        EncodeEpisodes,
        dict(checkpoint=checkpoint, root=root, plan=plan, concepts=concepts, out=out),
        block_size=options.episodes_per_call,
        actors=options.actors or max(1, gpus),
        num_gpus=1 if gpus else None,
        num_cpus=None if gpus else 1,
    )
    counts: dict[int, tuple[int, np.ndarray]] = {}
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for i, rows, positives in zip(batch["episode"], batch["rows"], batch["positives"], strict=True):
            counts[int(i)] = (int(rows), np.asarray(positives, np.int64))
    assert sorted(counts) == list(range(len(plan))), ("episodes encoded != planned", len(counts), len(plan))
    return counts


def _summaries(
    plan: list[EpisodePlan],
    assigned: dict[str, list[str]],
    counts: dict[int, tuple[int, np.ndarray]],
    concepts: list[str],
) -> dict[str, SplitSummary]:
    rows: dict[str, int] = defaultdict(int)
    positives: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(concepts), np.int64))
    for i, episode in enumerate(plan):
        rows[episode.split] += counts[i][0]
        positives[episode.split] = positives[episode.split] + counts[i][1]
    return {
        split: SplitSummary(
            episodes=assigned[split],
            rows=rows[split],
            positives={c: int(n) for c, n in zip(concepts, positives[split], strict=True)},
        )
        for split in SPLITS
    }


def _activation_dims(out: str) -> dict[str, int]:
    """Activation name -> dim, read off the first part's schema (what the model really returned)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = min(f for split in SPLITS for f in list_files(join(out, split), ".parquet"))
    fs, path = resolve_filesystem(first)
    schema = pq.read_schema(path, filesystem=fs)
    return {f.name: f.type.list_size for f in schema if pa.types.is_fixed_size_list(f.type)}
