"""Residual decoding (vae.residual) and KL balancing (loss.kl_balance)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from model_helpers import moving_squares

from aime.models import WorldModel


def _residual(cfg, output="gaussian"):
    return dataclasses.replace(cfg, vae=dataclasses.replace(cfg.vae, residual=True, output=output))


@pytest.mark.parametrize("output", ["gaussian", "logistic_mixture"])
def test_a_residual_decoder_predicting_no_change_copies_the_previous_frame(tiny_cfg, output):
    cfg = _residual(tiny_cfg, output)
    torch.manual_seed(0)
    model = WorldModel(cfg).eval()
    last = model.decoder.head[-1]
    with torch.no_grad():  # the head predicts a zero change (and, for the mixture, sharp equal components)
        last.weight.zero_()
        last.bias.zero_()
    batch = moving_squares(cfg, batch=2, steps=5)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    frames = batch["obs"].float() / 255.0
    torch.testing.assert_close(out.reconstruction[:, 1:], frames[:, :-1], atol=1e-6, rtol=0)
    torch.testing.assert_close(
        out.reconstruction[:, 0], torch.full_like(frames[:, 0], 0.5)
    )  # gray at a reset
    imagined = model.imagine(
        batch["obs"][:, :3], batch["action"][:, :3], batch["action"][:, 3:], temperature=0
    )
    for k in range(imagined.shape[1]):  # every imagined frame repeats the last context frame
        torch.testing.assert_close(imagined[:, k], frames[:, 2], atol=1e-6, rtol=0)


def test_the_residual_head_sees_the_previous_frame(tiny_cfg):
    cfg = _residual(tiny_cfg)
    torch.manual_seed(0)
    model = WorldModel(cfg)
    z = torch.zeros(1, 1, cfg.latent_dim + cfg.dynamics.hidden_dim)
    a, b = torch.zeros(1, 1, 3, 32, 32), torch.rand(1, 1, 3, 32, 32) * 2 - 1
    # Same latent, different previous frames: the predicted change differs (not just the offset).
    assert not torch.allclose(model.decoder(z, a), model.decoder(z, b))
    with pytest.raises(ValueError, match="residual"):
        model.decoder(z)


def _kl_gradients(cfg, balance):
    cfg = dataclasses.replace(
        cfg, loss=dataclasses.replace(cfg.loss, recon=0.0, kl_sticks=0.0, kl_alpha=0.0, kl_balance=balance)
    )
    torch.manual_seed(0)
    model = WorldModel(cfg)
    # One step: the prior's input is the learned initial state, so the posterior reaches the KL only
    # through q itself (at later steps it also shapes the prior's input h_{t-1} through z_{t-1}).
    batch = moving_squares(cfg, batch=2, steps=1)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    losses = model.losses(out, batch)
    losses.tasks["elbo"].backward()
    norm = lambda module: sum(float(p.grad.norm()) for p in module.parameters() if p.grad is not None)  # noqa: E731
    return losses.components["elbo/kl_z"], norm(model.posterior), norm(model.prior)


def test_kl_balance_splits_the_kl_gradient_between_prior_and_posterior(tiny_cfg):
    _, posterior, prior = _kl_gradients(tiny_cfg, None)
    assert posterior > 0 and prior > 0
    _, posterior, prior = _kl_gradients(tiny_cfg, 1.0)  # all of it trains the prior
    assert posterior == 0 and prior > 0
    _, posterior, prior = _kl_gradients(tiny_cfg, 0.0)  # all of it regularises the posterior
    assert posterior > 0 and prior == 0


def test_kl_balance_outside_the_unit_interval_is_refused(tiny_cfg):
    with pytest.raises(ValueError, match="kl_balance"):
        dataclasses.replace(tiny_cfg.loss, kl_balance=1.5)


def test_the_one_step_prediction_loss_trains_prior_and_decoder_from_the_priors_z(tiny_cfg):
    off = WorldModel(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=2, steps=4)
    out = off(batch["obs"], batch["action"], batch["is_first"])
    assert out.prior_recon_params is None and "prediction" not in off.losses(out, batch).tasks

    cfg = dataclasses.replace(
        tiny_cfg, loss=dataclasses.replace(tiny_cfg.loss, prior_recon=1.0, recon=0.0, kl_z=0.0)
    )
    torch.manual_seed(0)
    model = WorldModel(cfg)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    losses = model.losses(out, batch)
    assert out.prior_recon_params.shape == out.recon_params.shape
    losses.tasks["prediction"].backward()
    grad = lambda module: sum(float(p.grad.norm()) for p in module.parameters() if p.grad is not None)  # noqa: E731
    assert grad(model.prior) > 0 and grad(model.decoder) > 0 and grad(model.dynamics) > 0
    # Episode starts have no previous frame to predict from: they are left out of the mean.
    first_only = dict(batch, is_first=torch.ones_like(batch["is_first"]))
    out = model(first_only["obs"], first_only["action"], first_only["is_first"])
    assert float(model.losses(out, first_only).components["prediction/one_step"]) == 0.0
