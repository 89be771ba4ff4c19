"""Decoder p(o_t | z_t, h_{t-1}): the encoder's stages mirrored, no skip connections from the encoder.

Without skips every reconstruction goes through z_t, so sampling from the prior decodes exactly as
training did (the original's skips let reconstructions bypass z).
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from aime.models.vae.blocks import GatedResidualBlock


class FrameDecoder(nn.Module):
    def __init__(
        self,
        *,
        in_dim: int,
        image_size: int,
        channels: tuple[int, ...],
        blocks_per_stage: int,
        out_channels: int,
    ):
        super().__init__()
        self.channels = channels
        self.start = image_size // 2 ** len(channels)
        self.project = nn.Linear(in_dim, channels[-1] * self.start**2)
        layers: list[nn.Module] = []
        widths = list(reversed(channels))
        for width, next_width in zip(widths, widths[1:] + [channels[0]], strict=True):
            layers += [GatedResidualBlock(channels=width, spectral=False) for _ in range(blocks_per_stage)]
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width, next_width, 3, padding=1),
            ]
        layers += [nn.SiLU(), nn.Conv2d(channels[0], out_channels, 3, padding=1)]
        self.stages = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        B, T = features.shape[:2]
        x = self.project(rearrange(features, "b t d -> (b t) d"))
        x = rearrange(x, "n (c h w) -> n c h w", c=self.channels[-1], h=self.start, w=self.start)
        return rearrange(self.stages(x), "(b t) p h w -> b t p h w", b=B, t=T)  # (B, T, P, H, W)
