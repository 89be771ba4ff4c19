"""Adversarial pillar: discriminator shapes, loss kinds, and the separation of gradient paths."""

import pytest
import torch

from aime.models.adversarial import TemporalDiscriminator, discriminator_loss, generator_losses


def make_disc() -> TemporalDiscriminator:
    torch.manual_seed(0)
    return TemporalDiscriminator(
        image_size=16, patch_size=8, latent_dim=3, model_dim=16, heads=2, layers=2, max_frames=8
    )


def test_shapes():
    logits, feats = make_disc()(torch.rand(2, 4, 3, 16, 16), torch.randn(2, 4, 3))
    assert logits.shape == (2, 4) and len(feats) == 2 and feats[0].shape == (2, 4, 4, 16)


@pytest.mark.parametrize("kind", ["hinge", "wgan-gp"])
def test_discriminator_loss_trains_only_the_discriminator(kind):
    disc = make_disc()
    real, z = torch.rand(2, 3, 3, 16, 16), torch.randn(2, 3, 3)
    source = torch.zeros(1, requires_grad=True)
    fake = torch.rand(2, 3, 3, 16, 16) + source  # stands in for the decoder's output
    loss = discriminator_loss(disc, real, fake, z, kind=kind, gp_weight=10.0)
    loss.backward()
    assert bool(torch.isfinite(loss)) and source.grad is None
    assert all(p.grad is not None for p in disc.parameters())


def test_generator_losses_reach_the_fake_only():
    disc = make_disc()
    real, z = torch.rand(2, 3, 3, 16, 16), torch.randn(2, 3, 3)
    fake = torch.rand(2, 3, 3, 16, 16, requires_grad=True)
    adv, fm = generator_losses(disc, real, fake, z)
    (adv + fm).backward()
    assert fake.grad is not None and bool(fake.grad.abs().sum() > 0)
    assert all(p.grad is None for p in disc.parameters())
    assert float(fm.detach()) >= 0.0
