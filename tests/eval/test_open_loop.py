"""Open-loop scoring of one batch with a real (untrained) tiny WorldModel."""

from __future__ import annotations

import math

import pytest
import torch

from aime.checkpoints import load_world_model
from aime.eval.metrics import psnr
from aime.eval.open_loop import OpenLoopConfig, open_loop_batch
from aime.replay.store import ReplayStore
from aime.replay.windows import plan_windows, read_model_inputs


def test_model_and_baseline_are_scored_per_step_on_the_same_frames(store, untrained_checkpoint):
    cfg = OpenLoopConfig(context=3, horizon=4)
    files = ReplayStore(store).scan()
    windows = plan_windows(files, cfg.length, 3)
    arrays = read_model_inputs(ReplayStore(store), windows, cfg.length)
    batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
    model = load_world_model(untrained_checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    scores = open_loop_batch(model, batch, cfg)

    for predictor in ("model", "baseline"):
        for metric in ("mse", "psnr", "ssim"):
            assert scores[f"{predictor}/{metric}"].shape == (3, 4)
            assert torch.isfinite(scores[f"{predictor}/{metric}"]).all()
    frames = batch["obs"].float() / 255.0
    torch.testing.assert_close(scores["baseline/psnr"][:, 0], psnr(frames[:, 2], frames[:, 3]))
    torch.testing.assert_close(scores["baseline/psnr"][:, 3], psnr(frames[:, 2], frames[:, 6]))
    for name in ("elbo/recon", "elbo/kl_z", "elbo/neg_elbo", "task/elbo", "total"):
        assert scores[f"loss/{name}"].shape == (3,) and math.isfinite(scores[f"loss/{name}"][0]), name
    # Evaluation moves nothing: no codebook EMA, no spectral-norm power iteration, the mode restored.
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)


def test_window_length_must_be_context_plus_horizon(store, untrained_checkpoint):
    files = ReplayStore(store).scan()
    batch = {
        k: torch.from_numpy(v)
        for k, v in read_model_inputs(ReplayStore(store), plan_windows(files, 6, 1), 6).items()
    }
    with pytest.raises(AssertionError, match="context \\+ horizon"):
        open_loop_batch(load_world_model(untrained_checkpoint), batch, OpenLoopConfig(context=3, horizon=4))


def test_the_sample_mean_averages_each_windows_own_futures(store, untrained_checkpoint):
    from aime.eval.open_loop import mean_prediction

    cfg = OpenLoopConfig(context=3, horizon=4, temperature=1.0, samples=3)
    files = ReplayStore(store).scan()
    arrays = read_model_inputs(ReplayStore(store), plan_windows(files, cfg.length, 2), cfg.length)
    batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
    model = load_world_model(untrained_checkpoint)
    obs, action = batch["obs"], batch["action"]
    torch.manual_seed(1)
    mean = mean_prediction(model, obs[:, :3], action[:, :3], action[:, 3:], cfg)
    torch.manual_seed(1)
    futures = model.imagine(
        obs[:, :3].repeat_interleave(3, 0),
        action[:, :3].repeat_interleave(3, 0),
        action[:, 3:].repeat_interleave(3, 0),
        temperature=1.0,
    )
    assert mean.shape == (2, 4, 3, 32, 32)
    for window in range(2):  # window w's mean is over rows 3w .. 3w+2: its own futures, not a neighbour's
        torch.testing.assert_close(mean[window], futures[3 * window : 3 * window + 3].mean(0))
    assert not torch.allclose(futures[0], futures[1]), "temperature 1: the futures differ"
    with pytest.raises(ValueError, match="samples"):
        OpenLoopConfig(samples=0)
