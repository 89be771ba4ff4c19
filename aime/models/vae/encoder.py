"""Encoder: frames -> per-frame features e_t (parallel over time), then q(z_t | e_t, h_{t-1}, c_t)."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from aime.models.common import mlp, std_from
from aime.models.vae.blocks import GatedResidualBlock, conv_factory


class FrameEncoder(nn.Module):
    """Residual conv stages, each halving space (64 -> 4 for four stages), then a linear embedding."""

    def __init__(
        self,
        *,
        image_size: int,
        channels: tuple[int, ...],
        blocks_per_stage: int,
        embed_dim: int,
        spectral: bool,
    ):
        super().__init__()
        conv = conv_factory(spectral)
        layers: list[nn.Module] = [conv(3, channels[0], 3, padding=1)]
        prev = channels[0]
        for width in channels:
            layers.append(conv(prev, width, 4, stride=2, padding=1))
            layers += [GatedResidualBlock(channels=width, spectral=spectral) for _ in range(blocks_per_stage)]
            prev = width
        self.stages = nn.Sequential(*layers)
        self.final_size = image_size // 2 ** len(channels)
        self.embed = nn.Sequential(nn.SiLU(), nn.Linear(prev * self.final_size**2, embed_dim))

    def forward(self, frames: Tensor) -> Tensor:
        B, T = frames.shape[:2]
        x = rearrange(frames, "b t c h w -> (b t) c h w")
        x = self.stages(x)  # (B*T, C_last, s, s)
        return rearrange(self.embed(x.flatten(1)), "(b t) d -> b t d", b=B, t=T)  # (B, T, E)


class Posterior(nn.Module):
    """q(z_t | o_t, h_{t-1}, c_t) as a diagonal Gaussian over [e_t, h_{t-1}, c_t]."""

    def __init__(self, *, in_dim: int, hidden_dim: int, latent_dim: int, min_std: float):
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, 2 * latent_dim)
        self.min_std = min_std

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = self.net(features).chunk(2, dim=-1)
        return mean, std_from(raw, self.min_std)  # (..., Z) each
