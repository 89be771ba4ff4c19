"""Every loss term of the world model, grouped into the four balancing tasks.

Task grouping (docs/ARCHITECTURE.md has the rationale):
  elbo        recon + kl_z + kl_sticks + kl_alpha
  perception  token_ce + vq (commitment) + tokenizer_recon
  attention   attention_kl + slot_diversity + attention_movement + attention_state_kl
  adversarial adversarial (generator) + feature_matching + discriminator
  prediction  one_step (loss.prior_recon > 0 only): o_t decoded from the prior's z_t
              overshoot (loss.overshoot > 0 only): frames imagined open-loop inside training
Reconstruction is in nats per frame (summed over pixels), KLs in nats per step; both averaged over
(B, T). Names are the keys of ``LossOutput.components``; the trainer prefixes ``train/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from aime.models.adversarial import discriminator_loss, generator_losses
from aime.models.attention.maps import kl_maps, movement, slot_diversity
from aime.models.common import kl_standard_normal
from aime.models.outputs import LossOutput, WorldModelOutput
from aime.models.perception import PerceptionStream
from aime.models.prior import DPGMMPrior

if TYPE_CHECKING:
    from aime.models.world_model import WorldModel

TASKS = ("elbo", "perception", "attention", "adversarial", "prediction")


def compute_losses(model: WorldModel, out: WorldModelOutput, batch: Mapping[str, Tensor]) -> LossOutput:
    """Every pillar's terms (``components``), diagnostics (``metrics``) and weighted task losses."""
    frames = batch["obs"].float() / 127.5 - 1.0  # (B, T, 3, H, W)
    terms = _Terms()
    _elbo(model, out, batch, frames, terms)
    if out.prior_recon_params is not None:
        _one_step_prediction(model, out, frames, terms)
    if out.open_loop is not None:
        _open_loop_prediction(model, out, terms)
    if out.perception is not None:
        _perception(model, out, frames, terms)
    if out.attention_map is not None:
        _attention(model, out, terms)
    if model.discriminator is not None:
        _adversarial(model, out, frames, terms)
    total = torch.stack(list(terms.tasks.values())).sum()
    return LossOutput(total=total, tasks=terms.tasks, components=terms.comps, metrics=terms.metrics)


@dataclass
class _Terms:
    comps: dict[str, Tensor] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)
    tasks: dict[str, Tensor] = field(default_factory=dict)


def _elbo(
    model: WorldModel, out: WorldModelOutput, batch: Mapping[str, Tensor], frames: Tensor, t: _Terms
) -> None:
    w, comps = model.cfg.loss, t.comps
    # Likelihoods and KLs in fp32 even under bf16 autocast (sums over thousands of pixels, lgamma).
    with torch.autocast(device_type=frames.device.type, enabled=False):
        log_p = model.likelihood.log_prob(out.recon_params.flatten(0, 1).float(), frames.flatten(0, 1))
        comps["elbo/recon"] = -log_p.mean()
        prior = out.prior.float()
        kl_z = model.prior.kl_z(out.posterior_mean.float(), out.posterior_std.float(), prior)  # (B, T)
        comps["elbo/kl_z"] = kl_z.mean()
        comps["elbo/kl_sticks"] = model.prior.kl_sticks(prior).mean()
        comps["elbo/kl_alpha"] = model.prior.kl_alpha(prior).mean()
        kl_train = kl_z
        if w.kl_balance is not None:  # same value, gradients split between prior and posterior
            mean, std = out.posterior_mean.float(), out.posterior_std.float()
            kl_train = w.kl_balance * model.prior.kl_z(mean.detach(), std.detach(), prior) + (
                1.0 - w.kl_balance
            ) * model.prior.kl_z(mean, std, prior.detach())
    t.tasks["elbo"] = (
        w.recon * comps["elbo/recon"]
        + w.kl_z * kl_train.clamp(min=w.free_nats).mean()
        + w.kl_sticks * comps["elbo/kl_sticks"]
        + w.kl_alpha * comps["elbo/kl_alpha"]
    )
    m = t.metrics
    m["elbo/kl_z_per_dim"] = comps["elbo/kl_z"].detach() / out.posterior_mean.shape[-1]
    # Active latent dimensions: the posterior mean varies across frames (Burda et al.'s 0.01 threshold).
    m["elbo/active_dims"] = (out.posterior_mean.detach().flatten(0, 1).float().var(0) > 0.01).sum().float()
    m["elbo/recon_mse"] = F.mse_loss(out.reconstruction, batch["obs"].float() / 255.0).detach()
    m["elbo/bits_per_dim"] = comps["elbo/recon"].detach() / (frames[0, 0].numel() * math.log(2.0))
    m["prior/effective_components"] = DPGMMPrior.effective_components(prior).mean().detach()
    m["prior/alpha"] = out.prior.alpha.mean().detach()


def _one_step_prediction(model: WorldModel, out: WorldModelOutput, frames: Tensor, t: _Terms) -> None:
    """The one-step prediction from the prior, where o_{t-1} exists."""
    assert out.prior_recon_params is not None
    with torch.autocast(device_type=frames.device.type, enabled=False):
        log_p1 = model.likelihood.log_prob(out.prior_recon_params.flatten(0, 1).float(), frames.flatten(0, 1))
    valid = (~out.reset).flatten().float()  # (B*T,)
    t.comps["prediction/one_step"] = -(log_p1 * valid).sum() / valid.sum().clamp(min=1.0)
    t.tasks["prediction"] = model.cfg.loss.prior_recon * t.comps["prediction/one_step"]


def _open_loop_prediction(model: WorldModel, out: WorldModelOutput, t: _Terms) -> None:
    """-log p of the real frames under the frames imagined open-loop (``aime/models/overshoot.py``)."""
    o = out.open_loop
    assert o is not None
    with torch.autocast(device_type=o.target.device.type, enabled=False):
        log_p = model.likelihood.log_prob(o.params.flatten(0, 1).float(), o.target.flatten(0, 1))
    valid = o.valid.flatten().float()  # (N*K,)
    t.comps["prediction/overshoot"] = -(log_p * valid).sum() / valid.sum().clamp(min=1.0)
    weighted = model.cfg.loss.overshoot * t.comps["prediction/overshoot"]
    t.tasks["prediction"] = t.tasks["prediction"] + weighted if "prediction" in t.tasks else weighted


def _perception(model: WorldModel, out: WorldModelOutput, frames: Tensor, t: _Terms) -> None:
    w, p, comps = model.cfg.loss, out.perception, t.comps
    assert p is not None
    comps["perception/token_ce"] = PerceptionStream.token_cross_entropy(p)
    comps["perception/vq"] = p.commitment
    comps["perception/tokenizer_recon"] = F.mse_loss(p.tokenizer_recon.float(), frames)
    t.tasks["perception"] = (
        w.token_ce * comps["perception/token_ce"]
        + w.vq * comps["perception/vq"]
        + w.tokenizer_recon * comps["perception/tokenizer_recon"]
    )
    t.metrics["perception/perplexity"] = p.perplexity.detach()


def _attention(model: WorldModel, out: WorldModelOutput, t: _Terms) -> None:
    w, comps = model.cfg.loss, t.comps
    assert out.attention_map is not None and out.attention_prior_map is not None and out.slot_maps is not None
    assert out.attention_state_mean is not None and out.attention_state_std is not None
    M = out.attention_map.shape[-1]
    post_map, prior_map = out.attention_map.flatten(2), out.attention_prior_map.flatten(2)  # (B, T, N)
    comps["attention/kl"] = kl_maps(post_map, prior_map).mean()
    comps["attention/slot_diversity"] = slot_diversity(out.slot_maps.flatten(3)).mean()
    comps["attention/movement"] = movement(post_map, out.reset, M).mean()
    comps["attention/state_kl"] = kl_standard_normal(out.attention_state_mean, out.attention_state_std).mean()
    t.tasks["attention"] = (
        w.attention_kl * comps["attention/kl"]
        + w.slot_diversity * comps["attention/slot_diversity"]
        + w.attention_movement * comps["attention/movement"]
        + w.attention_state_kl * comps["attention/state_kl"]
    )


def _adversarial(model: WorldModel, out: WorldModelOutput, frames: Tensor, t: _Terms) -> None:
    w, a, comps = model.cfg.loss, model.cfg.adversarial, t.comps
    assert model.discriminator is not None
    fake = out.reconstruction * 2.0 - 1.0  # differentiable: the generator gets a gradient
    comps["adversarial/generator"], comps["adversarial/feature_matching"] = generator_losses(
        model.discriminator, frames, fake, out.z
    )
    comps["adversarial/discriminator"] = discriminator_loss(
        model.discriminator, frames, fake, out.z, kind=a.loss, gp_weight=a.gp_weight
    )
    t.tasks["adversarial"] = (
        w.adversarial * comps["adversarial/generator"]
        + w.feature_matching * comps["adversarial/feature_matching"]
        + w.discriminator * comps["adversarial/discriminator"]
    )
