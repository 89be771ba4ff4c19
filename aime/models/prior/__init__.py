"""Dirichlet-process Gaussian-mixture prior over z_t."""

from aime.models.prior.dpgmm import DPGMMPrior, PriorStats
from aime.models.prior.sticks import kl_kumaraswamy_beta, sample_log_kumaraswamy, stick_breaking

__all__ = ["DPGMMPrior", "PriorStats", "kl_kumaraswamy_beta", "sample_log_kumaraswamy", "stick_breaking"]
