"""The tiny model memorises 4 fixed sequences: its reconstruction loss halves within 300 CPU steps."""

import torch
from model_helpers import moving_squares

from aime.models import WorldModel


def test_tiny_model_halves_its_reconstruction_loss_on_four_sequences(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=4, steps=3)  # 4 sequences; T = 3 is the shortest with a transition
    opt = torch.optim.Adam(model.param_groups(tiny_cfg.optim.lr))
    first_recon = first_mse = None
    for step in range(1, 301):  # noqa: B007 (step is reported by the assert)
        out = model(batch["obs"], batch["action"], batch["is_first"])
        loss = model.losses(out, batch)
        opt.zero_grad()
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tiny_cfg.optim.grad_clip)
        opt.step()
        recon, mse = float(loss.components["elbo/recon"].detach()), float(loss.metrics["elbo/recon_mse"])
        if first_recon is None:
            first_recon, first_mse = recon, mse
        elif recon <= 0.5 * first_recon and mse <= 0.5 * first_mse:
            break  # the claim is "within 300 steps": stop as soon as it holds
    assert recon <= 0.5 * first_recon and mse <= 0.5 * first_mse, (step, first_recon, recon, first_mse, mse)
