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
from aime.eval.split import HeldOutSplit
from aime.eval.windows import Window, plan_windows, read_windows
from aime.replay.store import ReplayStore
from aime.run.seeding import derive_seed

log = logging.getLogger(__name__)

SCORE = "eval/psnr_one_step/model"  # higher is better
SumReduce = Callable[[Tensor], Tensor]  # sums a tensor over data-parallel ranks


def plan_periodic_eval(cfg: Config) -> list[dict]:
    """The run's fixed evaluation windows as plain dicts (they travel in the train loop config); empty
    when ``train.eval_windows`` is 0 or no held-out episode is long enough (a warning says which)."""
    count, length = cfg.train.eval_windows, OpenLoopConfig().length
    if count == 0 or not cfg.replay.root:
        return []
    files = ReplayStore(cfg.replay.root).scan()
    held_out = HeldOutSplit(seed=cfg.seed, eval_fraction=cfg.train.eval_fraction).held_out_files(files)
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
            arrays = read_windows(ReplayStore(cfg.replay.root or ""), mine, self.open_loop.length)
            self.batch = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        self.device = device

    @property
    def enabled(self) -> bool:
        return self.total > 0

    def __call__(self, model: torch.nn.Module, reduce_sum: SumReduce) -> dict[str, float]:
        """Window means over the whole plan: one-step and horizon-mean PSNR, mean SSIM, for the model
        and the copy-last-frame baseline, and the negative ELBO per frame."""
        names = [
            "psnr_one_step/model",
            "psnr_one_step/baseline",
            "psnr_mean/model",
            "psnr_mean/baseline",
            "ssim_mean/model",
            "ssim_mean/baseline",
            "neg_elbo",
        ]
        sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=self.device)
        if self.batch is not None:
            torch.manual_seed(self.seed)  # the training loop reseeds at every step: nothing leaks
            scores = open_loop_batch(model, self.batch, self.open_loop)  # type: ignore[arg-type]
            n = scores["model/psnr"].shape[0]
            values = [
                scores["model/psnr"][:, 0].sum(),
                scores["baseline/psnr"][:, 0].sum(),
                scores["model/psnr"].mean(1).sum(),
                scores["baseline/psnr"].mean(1).sum(),
                scores["model/ssim"].mean(1).sum(),
                scores["baseline/ssim"].mean(1).sum(),
                scores["loss/elbo/neg_elbo"].sum(),
            ]
            sums[:-1] = torch.stack([v.double() for v in values])
            sums[-1] = n
        sums = reduce_sum(sums)
        count = float(sums[-1])
        out = {f"eval/{name}": float(sums[i]) / count for i, name in enumerate(names)}
        out["eval/windows"] = count
        return out
