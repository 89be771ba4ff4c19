"""EvaluateWindows: the Ray Data callable class that scores evaluation windows with one checkpoint.

A plain class: ``runner.py`` hands it to ``map_batches`` (which makes the actors), and tests call it
in-process. The checkpoint is loaded once per actor, on the GPU Ray gave the actor if any.

    {"data": window ids (n,)} --read_windows--> obs, action, is_first --open_loop_batch-->
    {"window": (n,), "model/psnr": (n, H), ..., "baseline/ssim": (n, H), "loss/<term>": (n,)}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from aime import checkpoints
from aime.eval.open_loop import OpenLoopConfig, open_loop_batch
from aime.replay.store import ReplayStore
from aime.replay.windows import Window, read_model_inputs
from aime.run.seeding import derive_seed
from aime.storage.mirror import private_staging


class EvaluateWindows:
    def __init__(
        self, checkpoint: str, root: str, plan: Sequence[Window], open_loop: OpenLoopConfig, seed: int
    ):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        with private_staging():  # a shared-storage URI: its model files are read, then removed
            self.model = checkpoints.load(checkpoint, self.device, prefer="newest").model
        self.store = ReplayStore(root)
        self.plan, self.open_loop, self.seed = list(plan), open_loop, seed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = np.asarray(batch["data"], np.int64)
        arrays = read_model_inputs(self.store, [self.plan[i] for i in ids], self.open_loop.length)
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}
        # Posterior samples in the context make even temperature-0 rollouts random: seed by the
        # batch's first window so a rerun over the same plan reproduces every number.
        torch.manual_seed(derive_seed(self.seed, "eval", int(ids[0])))
        scores = open_loop_batch(self.model, tensors, self.open_loop)
        return {"window": ids, **{k: v.cpu().numpy() for k, v in scores.items()}}
