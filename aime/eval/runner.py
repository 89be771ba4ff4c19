"""``aime eval`` on the driver: plan held-out windows, score them on Ray Data actors, aggregate, report.
Only window ids and per-window scores cross processes; frames are read and scored inside the actors.

    run dir | checkpoint --aime.checkpoints.resolve--> checkpoint (best, else newest)
    checkpoint/config.yaml --> replay root --HeldOutSplit.of(cfg)--> held-out files --plan_windows--> plan
    window ids (id_block_dataset) --map_batches(EvaluateWindows, CPU or GPU actors)--> per-window scores
    per-window scores --Totals (window-weighted means)--> report.py: eval.json + psnr_horizon.png
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aime import checkpoints
from aime.config import Config
from aime.eval.actor import EvaluateWindows
from aime.eval.open_loop import OpenLoopConfig
from aime.eval.report import build_report, write_report
from aime.replay.dataset import id_block_dataset
from aime.replay.split import HeldOutSplit
from aime.replay.store import checkpoint_episodes
from aime.replay.windows import Window, plan_windows
from aime.storage.mirror import shared_location

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOptions:
    open_loop: OpenLoopConfig = field(default_factory=OpenLoopConfig)
    episodes: str | None = None  # replay store to evaluate on; None: the checkpoint's replay.root
    windows: int = 64  # evaluation windows, evenly spread over the held-out episodes
    eval_fraction: float | None = None  # see split.py; None: the run's train.eval_fraction
    split_seed: int | None = None  # None: the run's seed, as the trainer uses
    all_episodes: bool = False  # the whole store is held out (a store training never read)
    windows_per_call: int = 8  # windows an actor scores per call (its batch)
    actors: int | None = None  # None: one per GPU on a GPU cluster, one CPU actor otherwise
    out: str | None = None  # None: the run directory that owns the checkpoint
    progress: bool = True


def default_open_loop(
    cfg: Config, context: int | None, horizon: int | None, temperature: float, samples: int = 1
) -> OpenLoopConfig:
    """Unset context / horizon: a quarter of the training sequence as context, the rest predicted,
    so a window is as long as the sequences the model was trained on."""
    T = cfg.train.seq_len
    context = context or max(1, T // 4)
    return OpenLoopConfig(
        context=context, horizon=horizon or max(1, T - context), temperature=temperature, samples=samples
    )


def evaluate(checkpoint: str | Path, options: EvalOptions) -> dict[str, Any]:
    """Score the checkpoint on held-out windows; writes eval.json and psnr_horizon.png, returns the report."""
    started = time.monotonic()
    path = checkpoints.resolve(checkpoint)
    step = int(checkpoints.read_meta(path)["step"])
    cfg = checkpoints.checkpoint_config(path)
    listing = checkpoint_episodes(cfg.replay.root, options.episodes, str(path))
    root, files = listing.root, listing.files
    split = HeldOutSplit.of(cfg)
    if options.split_seed is not None:
        split = replace(split, seed=options.split_seed)
    if options.eval_fraction is not None:
        split = replace(split, eval_fraction=options.eval_fraction)
    held = list(files) if options.all_episodes else split.held_out_files(files)
    if not held:
        raise ValueError(
            f"{root} has {len(files)} episode file(s): too few to hold one out; collect more, "
            "or pass --all-episodes for a store training never read"
        )
    plan = plan_windows(held, options.open_loop.length, options.windows)
    log.info("eval: %d windows from %d held-out of %d episode files", len(plan), len(held), len(files))
    model = shared_location(path)  # what actors on any node load
    totals = _score(model, root, plan, options, seed=cfg.seed)
    report = build_report(
        totals.means(),
        windows=len(plan),
        episodes=len({w.episode_id for w in plan}),
        checkpoint=model,
        step=step,
        episodes_root=root,
        open_loop=options.open_loop,
        split={
            "seed": split.seed,
            "eval_fraction": split.eval_fraction,
            "all_episodes": options.all_episodes,
            "held_out_episodes": sorted({f.meta.episode_id for f in held}),
            "store_episodes": len({f.meta.episode_id for f in files}),
            "skipped_files": listing.skipped,  # unreadable files in the store, left out
        },
        seconds=time.monotonic() - started,
    )
    write_report(report, Path(options.out) if options.out else checkpoints.run_dir_of(path))
    return report


def _score(checkpoint: str, root: str, plan: list[Window], options: EvalOptions, seed: int) -> Totals:
    import ray
    from tqdm import tqdm

    gpus = int(ray.cluster_resources().get("GPU", 0))
    # One block of windows_per_call ids is one actor call, so the windows scored together (hence the
    # seeds and the batch-mean loss terms) never vary between runs.
    dataset = id_block_dataset(
        np.arange(len(plan), dtype=np.int64),
        EvaluateWindows,
        dict(checkpoint=checkpoint, root=root, plan=plan, open_loop=options.open_loop, seed=seed),
        block_size=options.windows_per_call,
        actors=options.actors or max(1, gpus),
        num_gpus=1 if gpus else None,
        num_cpus=None if gpus else 1,
    )
    totals = Totals()
    with tqdm(total=len(plan), unit="window", disable=not options.progress, dynamic_ncols=True) as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            totals.add(batch)
            bar.update(len(batch["window"]))
    scored = sorted(totals.windows)
    assert scored == list(range(len(plan))), ("windows scored != planned", len(scored), len(plan))
    return totals


class Totals:
    """Window-weighted running sums of every score: (H,) per-step curves and scalar loss terms."""

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.windows: list[int] = []

    def add(self, batch: dict[str, np.ndarray]) -> None:
        self.windows.extend(int(i) for i in batch["window"])
        for key, value in batch.items():
            if key != "window":
                total = np.asarray(value, np.float64).sum(axis=0)  # (H,) or ()
                self.sums[key] = self.sums.get(key, 0.0) + total

    def means(self) -> dict[str, np.ndarray]:
        n = max(1, len(self.windows))
        return {key: value / n for key, value in self.sums.items()}
