"""Decoder p(o_t | z_t, h_{t-1}): the encoder's stages mirrored, no skip connections from the encoder.

Without skips every reconstruction goes through z_t, so sampling from the prior decodes exactly as
training did (the original's skips let reconstructions bypass z).

With ``previous_channels=3`` (``vae.residual``) the last convolutions also see the previous frame
o_{t-1}, so the head can place a predicted change where the previous frame has its edges; the
likelihood then adds o_{t-1} to the predicted means (``PixelLikelihood.shift``).
"""

from __future__ import annotations

import torch
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
        previous_channels: int = 0,
    ):
        super().__init__()
        self.previous_channels = previous_channels
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
        layers += [nn.SiLU()]
        self.stages = nn.Sequential(*layers)
        if previous_channels:  # two convs: a 5x5 view of o_{t-1} around each pixel, to place the change
            width = 2 * channels[0]
            self.head: nn.Module = nn.Sequential(
                nn.Conv2d(channels[0] + previous_channels, width, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(width, out_channels, 3, padding=1),
            )
        else:
            self.head = nn.Conv2d(channels[0], out_channels, 3, padding=1)

    def forward(self, features: Tensor, previous: Tensor | None = None) -> Tensor:
        """features (B, T, D) and, with previous_channels, previous (B, T, 3, H, W) in [-1, 1].

        Returns params (B, T, P, H, W)."""
        B, T = features.shape[:2]
        x = self.project(rearrange(features, "b t d -> (b t) d"))
        x = rearrange(x, "n (c h w) -> n c h w", c=self.channels[-1], h=self.start, w=self.start)
        x = self.stages(x)
        if self.previous_channels:
            if previous is None:
                raise ValueError("this decoder is residual: pass the previous frames (B, T, 3, H, W)")
            x = torch.cat([x, previous.flatten(0, 1).to(x.dtype)], dim=1)
        return rearrange(self.head(x), "(b t) p h w -> b t p h w", b=B, t=T)  # (B, T, P, H, W)
