"""MSE, PSNR and SSIM against values known in closed form and an independent SciPy SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aime.eval.metrics import MAX_PSNR, SSIM_C1, frame_metrics, mse, psnr, ssim


def _frames(seed: int, shape=(2, 4, 3, 32, 32)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_identical_frames_score_perfectly_and_finitely():
    x = _frames(0)
    scores = frame_metrics(x, x)
    assert scores["mse"].shape == (2, 4)
    torch.testing.assert_close(scores["mse"], torch.zeros(2, 4))
    torch.testing.assert_close(scores["psnr"], torch.full((2, 4), MAX_PSNR))
    torch.testing.assert_close(scores["ssim"], torch.ones(2, 4))


def test_psnr_of_a_known_noise_level():
    # +-0.1 everywhere (a checkerboard of signs) has MSE 0.01 exactly: PSNR = 10 log10(1 / 0.01) = 20 dB.
    x = torch.full((1, 3, 16, 16), 0.5)
    signs = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2 - 1
    y = x + 0.1 * signs
    torch.testing.assert_close(mse(y, x), torch.tensor([0.01]))
    torch.testing.assert_close(psnr(y, x), torch.tensor([20.0]))
    # Gaussian noise of std 0.05: PSNR ~ 20 log10(1 / 0.05) = 26.02 dB.
    noisy = 0.5 + 0.05 * torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert psnr(noisy, torch.full_like(noisy, 0.5)).mean().item() == pytest.approx(
        20 * math.log10(1 / 0.05), abs=0.05
    )


def test_ssim_of_constant_frames_is_the_luminance_term():
    # No variance anywhere: the structure term is C2 / C2 = 1, SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.2, 0.7
    x, y = torch.full((1, 3, 20, 20), a), torch.full((1, 3, 20, 20), b)
    expected = (2 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-5)


def test_ssim_matches_an_independent_scipy_implementation():
    from scipy.ndimage import gaussian_filter

    x, y = _frames(2, (3, 24, 24)), _frames(3, (3, 24, 24))
    y = 0.6 * x + 0.4 * y  # correlated, so the structure term is far from 0 and from 1

    def reference(a: np.ndarray, b: np.ndarray) -> float:
        # Gaussian filtering with radius 5 (truncate * sigma = 5), then only the valid positions.
        blur = lambda im: gaussian_filter(im, sigma=1.5, truncate=5 / 1.5, mode="constant")[5:-5, 5:-5]  # noqa: E731
        values = []
        for c in range(3):
            p, q = a[c].astype(np.float64), b[c].astype(np.float64)
            mp, mq = blur(p), blur(q)
            vp, vq, cpq = blur(p * p) - mp**2, blur(q * q) - mq**2, blur(p * q) - mp * mq
            values.append(
                ((2 * mp * mq + 1e-4) * (2 * cpq + 9e-4) / ((mp**2 + mq**2 + 1e-4) * (vp + vq + 9e-4))).mean()
            )
        return float(np.mean(values))

    assert ssim(x, y).item() == pytest.approx(reference(x.numpy(), y.numpy()), abs=1e-5)
    assert ssim(x, 1 - x).item() < 0  # anti-correlated structure
