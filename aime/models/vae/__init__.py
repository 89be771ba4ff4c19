"""Encoder q(z_t | o_t, h_{t-1}, c_t) and decoder p(o_t | z_t, h_{t-1}) with their pixel likelihoods."""

from aime.models.vae.decoder import FrameDecoder
from aime.models.vae.distributions import FixedGaussian, LogisticMixture, PixelLikelihood, make_likelihood
from aime.models.vae.encoder import FrameEncoder, Posterior

__all__ = [
    "FixedGaussian",
    "FrameDecoder",
    "FrameEncoder",
    "LogisticMixture",
    "PixelLikelihood",
    "Posterior",
    "make_likelihood",
]
