"""Per-frame image metrics for open-loop prediction: MSE, PSNR and SSIM on [0, 1] images.

Every function takes frames (..., 3, H, W) float in [0, 1] and returns one value per frame (...),
so a caller keeps the (B, H) layout of a predicted horizon and averages wherever it wants.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# A perfect prediction has infinite PSNR; capping the MSE keeps every mean and every JSON value finite.
MIN_MSE = 1e-10
MAX_PSNR = 10.0 * math.log10(1.0 / MIN_MSE)  # 100 dB

# Wang et al. 2004: an 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range L = 1.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 1.0) ** 2
SSIM_C2 = (0.03 * 1.0) ** 2


def _check(pred: Tensor, target: Tensor) -> None:
    assert pred.shape == target.shape and pred.dim() >= 3, (tuple(pred.shape), tuple(target.shape))


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over channels and pixels: (..., C, H, W) -> (...)."""
    _check(pred, target)
    return (pred.float() - target.float()).pow(2).mean(dim=(-3, -2, -1))


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB for a peak of 1, capped at ``MAX_PSNR``: (..., C, H, W) -> (...)."""
    return psnr_from_mse(mse(pred, target))


def psnr_from_mse(error: Tensor) -> Tensor:
    return 10.0 * torch.log10(1.0 / error.clamp(min=MIN_MSE))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """The normalised 2-D Gaussian (size, size) as the outer product of a 1-D one."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Structural similarity averaged over valid window positions and channels: (..., C, H, W) -> (...).

    Local statistics are Gaussian-weighted over 'valid' positions only (no padding), as in Wang et al.'s
    reference code; frames smaller than the window use a window as large as the frame. Computed in
    float64: in float32, E[x^2] - E[x]^2 cancels to errors of ~1e-7, not small beside C2 = 9e-4.
    """
    _check(pred, target)
    *lead, C, H, W = pred.shape
    size = min(SSIM_WINDOW, H, W)
    window = gaussian_window(size).to(device=pred.device)
    weight = window.expand(C, 1, size, size)  # depthwise: each channel filtered on its own
    x = pred.double().reshape(-1, C, H, W)  # (N, C, H, W)
    y = target.double().reshape(-1, C, H, W)

    def blur(image: Tensor) -> Tensor:
        return F.conv2d(image, weight, groups=C)  # (N, C, H - size + 1, W - size + 1)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + SSIM_C1) / (mu_x**2 + mu_y**2 + SSIM_C1)
    structure = (2 * cov + SSIM_C2) / (var_x + var_y + SSIM_C2)
    return (luminance * structure).mean(dim=(-3, -2, -1)).float().reshape(lead)


def frame_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """{"mse", "psnr", "ssim"}, each (...) for frames (..., C, H, W)."""
    error = mse(pred, target)
    return {"mse": error, "psnr": psnr_from_mse(error), "ssim": ssim(pred, target)}
