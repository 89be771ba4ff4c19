"""The open-loop training loss (loss.overshoot): where predictions start, what they predict, what they
train, and that imagination (which shares its loop) is unchanged by it."""

import dataclasses

import pytest
import torch
from model_helpers import moving_squares

from aime.models import WorldModel
from aime.models.overshoot import start_steps


def with_overshoot(cfg, **loss):
    keys = {"overshoot": 1.0, "overshoot_steps": 4, "overshoot_context": 2, "overshoot_starts": 3} | loss
    return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, **keys))


def grad(module) -> float:
    return sum(float(p.grad.norm()) for p in module.parameters() if p.grad is not None)


def test_starts_are_spread_over_the_window_and_short_windows_name_the_keys(tiny_cfg):
    loss = with_overshoot(tiny_cfg).loss
    assert start_steps(loss, 10) == (1, 3, 5)  # the last observed frame: context 2 first, 4 steps left last
    assert start_steps(loss, 6) == (1,)  # one place fits: the starts collapse onto it
    assert start_steps(dataclasses.replace(loss, overshoot_starts=1), 10) == (1,)
    with pytest.raises(ValueError, match=r"overshoot_context \+ overshoot_steps = 6 steps, got 5"):
        start_steps(loss, 5)


def test_predictions_score_the_real_frames_and_stop_at_a_new_episode(tiny_cfg):
    cfg = with_overshoot(tiny_cfg)
    torch.manual_seed(0)
    model = WorldModel(cfg)
    batch = moving_squares(cfg, batch=2, steps=10)
    batch["is_first"][1, 7] = True  # the second window holds a second episode from step 7
    out = model(batch["obs"], batch["action"], batch["is_first"])
    o = out.open_loop
    P, S = model.likelihood.param_channels, cfg.image_size
    assert o.params.shape == (6, 4, P, S, S) and o.target.shape == (6, 4, 3, S, S)  # 3 starts x B=2
    frames = batch["obs"].float() / 127.5 - 1.0
    assert torch.equal(o.target[2], frames[0, 4:8])  # start 3: the frames after it
    assert torch.equal(o.target[5], frames[1, 6:10])  # start 5
    expected = torch.ones(6, 4, dtype=torch.bool)
    expected[3, 3] = False  # start 3 predicts steps 4..7 of the second window: step 7 is a new episode
    expected[5, 1:] = False  # start 5 predicts 6..9: from 7 on
    assert torch.equal(o.valid, expected)
    losses = model.losses(out, batch)
    assert torch.isfinite(losses.components["prediction/overshoot"])


def test_the_loss_trains_prior_dynamics_decoder_and_posterior(tiny_cfg):
    """Alone (every other weight 0), the open-loop loss reaches the start state's posterior and every
    module of the imagined steps."""
    zero = {k: 0.0 for k in ("recon", "kl_z", "kl_sticks", "kl_alpha", "token_ce", "vq", "tokenizer_recon")}
    zero |= {k: 0.0 for k in ("attention_kl", "slot_diversity", "attention_movement", "attention_state_kl")}
    cfg = with_overshoot(tiny_cfg, **zero)
    torch.manual_seed(0)
    model = WorldModel(cfg)
    batch = moving_squares(cfg, batch=2, steps=8)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    losses = model.losses(out, batch)
    assert set(losses.tasks) >= {"prediction"}
    losses.total.backward()
    for name in ("prior", "dynamics", "decoder", "posterior", "encoder"):
        assert grad(model.component(name)) > 0, name
    assert grad(model.attention.prior) > 0  # the imagined steps' attention comes from its prior


def test_imagined_frames_do_not_move_the_perception_codebook(tiny_cfg):
    """Perception learns from real frames only: its EMA statistics after a training forward pass are
    the same with the open-loop loss on (which runs perception over imagined frames) as off."""
    batch = moving_squares(tiny_cfg, batch=2, steps=8)
    buffers = []
    for cfg in (tiny_cfg, with_overshoot(tiny_cfg)):
        torch.manual_seed(0)
        model = WorldModel(cfg)
        model(batch["obs"], batch["action"], batch["is_first"])
        buffers.append({k: v.clone() for k, v in model.perception.named_buffers()})
    assert buffers[0] and buffers[0].keys() == buffers[1].keys()
    assert all(torch.equal(buffers[0][k], buffers[1][k]) for k in buffers[0])


def test_off_by_default_and_imagination_does_not_train(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=2, steps=6)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    assert out.open_loop is None and "prediction/overshoot" not in model.losses(out, batch).components
    obs, action = batch["obs"], batch["action"]
    frames = model.imagine(obs[:, :2], action[:, :2], action[:, 2:], temperature=0.0)
    assert frames.shape == (2, 4, 3, tiny_cfg.image_size, tiny_cfg.image_size) and not frames.requires_grad


def test_eval_mode_passes_windows_of_any_length(tiny_cfg):
    """The loss is for training: evaluation and the run's figures call the model on short windows."""
    torch.manual_seed(0)
    model = WorldModel(with_overshoot(tiny_cfg)).eval()
    batch = moving_squares(tiny_cfg, batch=2, steps=3)  # shorter than context 2 + 4 steps
    with torch.no_grad():
        out = model(batch["obs"], batch["action"], batch["is_first"])
    assert out.open_loop is None and "prediction/overshoot" not in model.losses(out, batch).components
    with pytest.raises(ValueError, match="overshoot_context"):
        model.train()(batch["obs"], batch["action"], batch["is_first"])


def test_a_frozen_tokenizer_stays_frozen_under_the_open_loop_loss(tiny_cfg):
    """The imagined steps run perception in eval mode and then restore each part's own mode: a
    tokenizer frozen by a training stage stays in eval and its codebook does not move."""
    torch.manual_seed(0)
    model = WorldModel(with_overshoot(tiny_cfg))
    model.freeze("perception.tokenizer")
    batch = moving_squares(tiny_cfg, batch=2, steps=8)
    before = {k: v.clone() for k, v in model.perception.tokenizer.named_buffers()}
    for _ in range(2):
        model(batch["obs"], batch["action"], batch["is_first"])
        assert not model.perception.tokenizer.training and model.perception.bottleneck.training
    assert all(torch.equal(v, before[k]) for k, v in model.perception.tokenizer.named_buffers())


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("overshoot", -1.0, "overshoot must be >= 0"),
        ("overshoot_steps", 0, "overshoot_steps must be >= 1"),
        ("overshoot_context", 0, "overshoot_context must be >= 1"),
        ("overshoot_starts", 0, "overshoot_starts must be >= 1"),
    ],
)
def test_bad_settings_name_the_key(tiny_cfg, key, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(tiny_cfg.loss, **{key: value})
