"""GAN losses (hinge or WGAN-GP) and feature matching, with the gradient paths kept apart.

The generator terms run the discriminator with detached parameters (``functional_call``), so they
push gradients only into the reconstruction (and through it the decoder, z and h), never into the
discriminator; the discriminator term sees detached fakes. Both can therefore be summed into one
total and back-propagated once. The fake is the decoder's mean frame, a differentiable function of
z: the original sampled it under no_grad, which left the generator loss without a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from aime.models.adversarial.discriminator import TemporalDiscriminator


def discriminator_loss(
    disc: TemporalDiscriminator, real: Tensor, fake: Tensor, z: Tensor, *, kind: str, gp_weight: float
) -> Tensor:
    fake, z = fake.detach(), z.detach()
    real_logits, _ = disc(real, z)
    fake_logits, _ = disc(fake, z)
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return fake_logits.mean() - real_logits.mean() + gp_weight * gradient_penalty(disc, real, fake, z)


def gradient_penalty(disc: TemporalDiscriminator, real: Tensor, fake: Tensor, z: Tensor) -> Tensor:
    """(||grad_x D(x)|| - 1)^2 on random interpolates between real and fake sequences."""
    eps = torch.rand(real.shape[0], 1, 1, 1, 1, dtype=real.dtype, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    # The penalty needs a double backward, which only the math attention kernel implements.
    with sdpa_kernel(SDPBackend.MATH):
        logits, _ = disc(mixed, z)
    (grad,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def generator_losses(
    disc: TemporalDiscriminator, real: Tensor, fake: Tensor, z: Tensor
) -> tuple[Tensor, Tensor]:
    """(adversarial, feature matching) for the generator; both hinge and WGAN use -D(fake)."""
    frozen = {name: p.detach() for name, p in disc.named_parameters()}
    fake_logits, fake_features = functional_call(disc, frozen, (fake, z.detach()))
    with torch.no_grad():
        _, real_features = disc(real, z.detach())
    matching = torch.stack([(f - r).abs().mean() for f, r in zip(fake_features, real_features, strict=True)])
    return -fake_logits.mean(), matching.mean()
