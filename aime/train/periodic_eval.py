"""Evaluation inside training: open-loop scores on a fixed set of held-out windows at every checkpoint.

The driver plans the windows once (``plan_periodic_eval``: the same held-out split and window layout
``aime eval`` uses), so every checkpoint of a run is scored on identical frames, even while online
collection adds episodes. Each rank scores its slice of the plan and the sums are all-reduced, so the
cost is split across the workers and every rank reports the same numbers:

    plan (driver) --rank::world--> read_windows --open_loop_batch--> per-window scores
    per-window sums --all_reduce(sum)--> {"eval/psnr_one_step/model", ..., "eval/windows"}

``eval/psnr_one_step/model`` is the score ``CheckpointConfig`` keeps the best checkpoint by.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict

import torch
from torch import Tensor

from aime.config import Config
from aime.eval.open_loop import OpenLoopConfig, open_loop_batch
from aime.metrics import EVAL, EVAL_PSNR_GAIN_MEAN, EVAL_PSNR_GAIN_ONE_STEP, EVAL_SCORE, EVAL_WINDOWS
from aime.models.world_model import eager_rollout
from aime.replay.split import HeldOutSplit
from aime.replay.store import EpisodeFile, ReplayStore
from aime.replay.windows import Window, plan_windows, read_model_inputs
from aime.run.seeding import derive_seed

log = logging.getLogger(__name__)

SCORE = EVAL_SCORE  # higher is better
SumReduce = Callable[[Tensor], Tensor]  # sums a tensor over data-parallel ranks

# What is reported, as a per-window value from open_loop_batch's scores ((n, H) curves, (n,) losses).
SUMMARIES: dict[str, Callable[[dict[str, Tensor]], Tensor]] = {
    "psnr_one_step/model": lambda s: s["model/psnr"][:, 0],
    "psnr_one_step/baseline": lambda s: s["baseline/psnr"][:, 0],
    "psnr_mean/model": lambda s: s["model/psnr"].mean(1),
    "psnr_mean/baseline": lambda s: s["baseline/psnr"].mean(1),
    "ssim_mean/model": lambda s: s["model/ssim"].mean(1),
    "ssim_mean/baseline": lambda s: s["baseline/ssim"].mean(1),
    "neg_elbo": lambda s: s["loss/elbo/neg_elbo"],
}

# Every metric a periodic evaluation reports (what a sweep may optimise).
REPORTED = (
    *(EVAL + name for name in SUMMARIES),
    EVAL_WINDOWS,
    EVAL_PSNR_GAIN_ONE_STEP,
    EVAL_PSNR_GAIN_MEAN,
)


def plan_periodic_eval(cfg: Config, files: Sequence[EpisodeFile]) -> list[dict]:
    """The run's fixed evaluation windows over the store listing ``files``, as plain dicts (they travel
    in the train loop config); empty when ``train.eval_windows`` is 0 or no held-out episode is long
    enough (a warning says which)."""
    count, length = cfg.train.eval_windows, OpenLoopConfig().length
    if count == 0:
        return []
    held_out = HeldOutSplit.of(cfg).held_out_files(files)
    if not any(f.num_rows >= length for f in held_out):
        log.warning(
            "periodic evaluation is off: no held-out episode has the %d steps a window needs (%d held out)",
            length,
            len(held_out),
        )
        return []
    return [asdict(w) for w in plan_windows(held_out, length, count)]


class PeriodicEval:
    """Scores this rank's slice of the plan; call it on every rank at the same steps (collective)."""

    def __init__(
        self, cfg: Config, plan: Sequence[dict], *, rank: int, world_size: int, device: torch.device
    ):
        self.open_loop = OpenLoopConfig()
        self.seed = derive_seed(cfg.seed, "periodic-eval")
        self.total = len(plan)
        mine = [Window(**w) for w in plan[rank::world_size]]
        self.batch: dict[str, Tensor] | None = None
        if mine:
            arrays = read_model_inputs(ReplayStore(cfg.replay.root or ""), mine, self.open_loop.length)
            self.batch = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        self.device = device

    @property
    def enabled(self) -> bool:
        return self.total > 0

    def __call__(self, model: torch.nn.Module, reduce_sum: SumReduce) -> dict[str, float]:
        """Window means over the whole plan (``SUMMARIES``), ``eval/windows`` and the PSNR gains over
        copy-last-frame (``EVAL_PSNR_GAIN_*``)."""
        sums = torch.zeros(len(SUMMARIES) + 1, dtype=torch.float64, device=self.device)
        if self.batch is not None:
            torch.manual_seed(self.seed)  # the training loop reseeds at every step: nothing leaks
            with eager_rollout(model):  # type: ignore[arg-type]  # a few batches of another shape
                scores = open_loop_batch(model, self.batch, self.open_loop)  # type: ignore[arg-type]
            sums[:-1] = torch.stack([per_window(scores).double().sum() for per_window in SUMMARIES.values()])
            sums[-1] = scores["model/psnr"].shape[0]
        sums = reduce_sum(sums)
        count = float(sums[-1])
        out = {EVAL + name: float(total) / count for name, total in zip(SUMMARIES, sums[:-1], strict=True)}
        out[EVAL_WINDOWS] = count
        out[EVAL_PSNR_GAIN_ONE_STEP] = out[EVAL_SCORE] - out[EVAL + "psnr_one_step/baseline"]
        out[EVAL_PSNR_GAIN_MEAN] = out[EVAL + "psnr_mean/model"] - out[EVAL + "psnr_mean/baseline"]
        return out
