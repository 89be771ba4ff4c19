"""Optional adversarial pillar: a temporal discriminator and its losses."""

from aime.models.adversarial.discriminator import TemporalDiscriminator
from aime.models.adversarial.losses import discriminator_loss, generator_losses, gradient_penalty

__all__ = ["TemporalDiscriminator", "discriminator_loss", "generator_losses", "gradient_penalty"]
