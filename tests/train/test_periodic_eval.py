"""Periodic evaluation: a fixed plan over held-out episodes, split over ranks, summed back exactly."""

from __future__ import annotations

import json

import pytest
import torch

from aime.config import Config, load_config
from aime.eval.metrics import psnr
from aime.models.world_model import WorldModel
from aime.replay.split import HeldOutSplit
from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes
from aime.replay.windows import Window, read_model_inputs
from aime.train.periodic_eval import PeriodicEval, plan_periodic_eval


@pytest.fixture
def cfg(tmp_path):
    replay = tmp_path / "replay"
    write_synthetic_episodes(replay, 6, length=20, image_size=32, action_dim=6)
    return load_config(
        Config, "tiny", [f"replay.root={replay}", "train.eval_windows=7", "train.eval_fraction=0.3"]
    )


def test_the_plan_covers_only_held_out_episodes_and_is_fixed(cfg):
    plan = plan_periodic_eval(cfg, ReplayStore(cfg.replay.root).scan())
    assert len(plan) == 7
    held_out = HeldOutSplit(seed=cfg.seed, eval_fraction=0.3).held_out(
        f.meta.episode_id for f in ReplayStore(cfg.replay.root).scan()
    )
    assert {w["episode_id"] for w in plan} <= held_out
    assert (
        plan_periodic_eval(cfg, ReplayStore(cfg.replay.root).scan()) == plan
    )  # a function of the listing: every checkpoint, same frames
    assert json.loads(json.dumps(plan)) == plan  # plain data: it travels to the workers in the loop config


def test_rank_slices_sum_to_the_whole_plan(cfg):
    plan = plan_periodic_eval(cfg, ReplayStore(cfg.replay.root).scan())
    torch.manual_seed(0)
    model = WorldModel(cfg.model).eval()
    device = torch.device("cpu")
    whole = PeriodicEval(cfg, plan, rank=0, world_size=1, device=device)(model, lambda t: t)
    assert whole["eval/windows"] == 7

    # Two "ranks" in one process: each scores its slice; the sum-reduce adds the other's sums.
    parts = [PeriodicEval(cfg, plan, rank=r, world_size=2, device=device) for r in (0, 1)]
    captured: list[torch.Tensor] = []
    for part in parts:
        part(model, lambda t: captured.append(t.clone()) or t)
    total = captured[0] + captured[1]
    combined = parts[0](model, lambda t: total)
    assert combined["eval/windows"] == 7
    # The copy-last-frame baseline is deterministic: the split must not change it.
    assert combined["eval/psnr_one_step/baseline"] == pytest.approx(whole["eval/psnr_one_step/baseline"])

    # ... and it is the mean one-step PSNR of copying frame C-1 over the planned windows.
    arrays = read_model_inputs(ReplayStore(cfg.replay.root), [Window(**w) for w in plan], 15)
    obs = torch.from_numpy(arrays["obs"]).float() / 255.0
    expected = psnr(obs[:, 4], obs[:, 5]).mean()
    assert whole["eval/psnr_one_step/baseline"] == pytest.approx(float(expected), rel=1e-5)


def test_no_long_enough_held_out_episode_turns_it_off(tmp_path):
    replay = tmp_path / "short"
    write_synthetic_episodes(replay, 3, length=10, image_size=32, action_dim=6)
    cfg = load_config(Config, "tiny", [f"replay.root={replay}"])
    assert plan_periodic_eval(cfg, ReplayStore(cfg.replay.root).scan()) == []
    assert not PeriodicEval(cfg, [], rank=0, world_size=1, device=torch.device("cpu")).enabled
