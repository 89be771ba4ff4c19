"""Video tokenizer: causal 3-D conv encoder/decoder around a vector quantiser.

Time is never downsampled and every temporal kernel looks only backwards (left padding), so frame
t's tokens depend on frames <= t. Space shrinks by 4 (two stride-2 stages): 64x64 -> 16x16 tokens.
Known leak: a window holding two episodes lets the first (time_kernel - 1) * depth frames of the
second see the end of the first; the Perceiver's episode mask stops it there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from aime.models.common import Reduce, identity_reduce
from aime.models.perception.quantizer import VectorQuantizer


class CausalConv3d(nn.Module):
    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        time_kernel: int,
        kernel: int,
        stride: int = 1,
        padding: int | None = None,
    ):
        super().__init__()
        self.time_pad = time_kernel - 1
        pad = kernel // 2 if padding is None else padding
        self.conv = nn.Conv3d(
            cin, cout, (time_kernel, kernel, kernel), stride=(1, stride, stride), padding=(0, pad, pad)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 0, 0, 0, self.time_pad, 0)))  # (B, C, T, H, W), past-only in time


class Upsample2x(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")


@dataclass
class TokenizerOutput:
    quantized: Tensor  # (B, T, D, h, w)
    ids: Tensor  # (B, T, h, w) long
    recon: Tensor  # (B, T, 3, H, W) in [-1, 1] units
    commitment: Tensor  # scalar
    perplexity: Tensor  # scalar


class Tokenizer(nn.Module):
    def __init__(
        self,
        *,
        channels: tuple[int, int],
        code_dim: int,
        codebook_size: int,
        time_kernel: int,
        commitment: float,
        ema_decay: float,
        dead_threshold: float,
        reduce: Reduce = identity_reduce,
    ):
        super().__init__()
        c0, c1 = channels
        kt = time_kernel
        self.encoder = nn.Sequential(
            CausalConv3d(3, c0, time_kernel=kt, kernel=3),
            nn.SiLU(),
            CausalConv3d(c0, c0, time_kernel=kt, kernel=4, stride=2, padding=1),
            nn.SiLU(),
            CausalConv3d(c0, c1, time_kernel=kt, kernel=4, stride=2, padding=1),
            nn.SiLU(),
            CausalConv3d(c1, code_dim, time_kernel=1, kernel=1),
        )
        self.quantizer = VectorQuantizer(
            codebook_size=codebook_size,
            dim=code_dim,
            decay=ema_decay,
            commitment=commitment,
            dead_threshold=dead_threshold,
            reduce=reduce,
        )
        self.decoder = nn.Sequential(
            CausalConv3d(code_dim, c1, time_kernel=kt, kernel=3),
            nn.SiLU(),
            Upsample2x(),
            CausalConv3d(c1, c0, time_kernel=kt, kernel=3),
            nn.SiLU(),
            Upsample2x(),
            CausalConv3d(c0, c0, time_kernel=kt, kernel=3),
            nn.SiLU(),
            CausalConv3d(c0, 3, time_kernel=1, kernel=3),
        )

    @property
    def receptive_frames(self) -> int:
        """How many frames (the newest included) one frame's tokens depend on: 1 + each causal conv's
        reach back in time."""
        return 1 + sum(m.time_pad for m in self.encoder if isinstance(m, CausalConv3d))

    def encode(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """frames (B, T, 3, H, W) in [-1, 1].

        Returns (quantized (B, D, T, h, w), ids (B, T, h, w), commitment, perplexity).
        """
        B, T = frames.shape[:2]
        latents = self.encoder(rearrange(frames, "b t c h w -> b c t h w"))  # (B, D, T, h, w)
        h, w = latents.shape[-2:]
        vq = self.quantizer(rearrange(latents, "b d t h w -> (b t h w) d"))
        quantized = rearrange(vq.quantized, "(b t h w) d -> b d t h w", b=B, t=T, h=h, w=w)
        ids = rearrange(vq.ids, "(b t h w) -> b t h w", b=B, t=T, h=h, w=w)
        return quantized, ids, vq.commitment, vq.perplexity

    def forward(self, frames: Tensor) -> TokenizerOutput:
        """frames (B, T, 3, H, W) in [-1, 1]: encode, quantise and decode."""
        quantized, ids, commitment, perplexity = self.encode(frames)
        recon = rearrange(self.decoder(quantized), "b c t h w -> b t c h w")
        return TokenizerOutput(
            quantized=rearrange(quantized, "b d t h w -> b t d h w"),
            ids=ids,
            recon=recon,
            commitment=commitment,
            perplexity=perplexity,
        )

    def pretrain_loss(self, frames: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Stand-alone pre-training objective: reconstruction MSE + commitment.  frames in [-1, 1]."""
        out = self(frames)
        recon = F.mse_loss(out.recon, frames)
        return recon + out.commitment, {
            "tokenizer/recon": recon.detach(),
            "tokenizer/vq": out.commitment.detach(),
            "tokenizer/perplexity": out.perplexity.detach(),
        }
