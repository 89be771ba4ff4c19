"""The world model's typed configuration: one frozen dataclass per pillar, composed in ModelConfig.

Defaults follow the original AIME (latent 36, 15 mixture components, context 128, a 3-layer LSTM,
6 slots, 32x32 attention, codebook 1024, lr 2e-4, grad clip 5). ``cluster/configs/model/*.yaml``
holds the presets; their body is a ModelConfig (no ``model:`` wrapper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class VAEConfig:
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stage each, halving space: 64 -> 4
    blocks_per_stage: int = 1  # gated residual blocks after each downsampling
    embed_dim: int = 512  # per-frame encoder feature e_t
    hidden_dim: int = 512  # posterior MLP width
    spectral_norm: bool = True  # encoder convs only: bounds how fast q(z|o) moves with o
    output: Literal["logistic_mixture", "gaussian"] = "logistic_mixture"
    mixture_components: int = 5  # per colour channel, for output=logistic_mixture
    gaussian_std: float = 0.1  # fixed pixel std in [-1, 1] units, for output=gaussian
    min_std: float = 0.1  # floor of the posterior std of z
    # Residual decoding: p(o_t | z_t, h_{t-1}, o_{t-1}) predicts the change from the previous frame
    # (gray at an episode start; imagination feeds back its own frames). Off in the original AIME.
    residual: bool = False


@dataclass(frozen=True)
class PriorConfig:
    components: int = 15  # truncation level K of the stick-breaking process
    hidden_dim: int = 512
    mc_samples: int = 4  # S: samples of q(z) in the Monte Carlo KL(q || mixture)
    series_terms: int = 10  # truncation of the Kumaraswamy-Beta KL series
    alpha_prior_shape: float = 1.0  # Gamma hyperprior on the DP concentration
    alpha_prior_rate: float = 1.0
    min_std: float = 0.1  # floor of each component's std


@dataclass(frozen=True)
class DynamicsConfig:
    hidden_dim: int = 256  # h_t
    layers: int = 3


@dataclass(frozen=True)
class AttentionConfig:
    enabled: bool = True
    slots: int = 6
    map_size: int = 32  # attention maps are map_size x map_size
    feature_dim: int = 64  # feature pyramid channels
    slot_dim: int = 64
    iterations: int = 3  # slot-attention rounds per frame
    hidden_dim: int = 128  # attention prior and state MLPs
    state_dim: int = 16  # A_t


@dataclass(frozen=True)
class PerceptionConfig:
    enabled: bool = True
    codebook_size: int = 1024
    code_dim: int = 64
    tokenizer_channels: tuple[int, int] = (64, 128)  # two stride-2 stages: space / 4
    time_kernel: int = 3  # causal temporal kernel of every tokenizer conv
    commitment: float = 0.25  # beta of the VQ commitment loss
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0  # EMA uses per step below which a code is re-seeded from the batch
    model_dim: int = 128  # bottleneck and predictor width
    heads: int = 4
    queries: int = 8  # Perceiver latent queries per frame
    temporal_layers: int = 2  # causal self-attention over frames
    predictor_layers: int = 2
    context_dim: int = 128  # c_t
    max_frames: int = 256  # learned temporal positions; longest sequence the stream accepts


@dataclass(frozen=True)
class AdversarialConfig:
    enabled: bool = False  # optional pillar; GAN losses are the least stable part of training
    loss: Literal["hinge", "wgan-gp"] = "hinge"
    patch_size: int = 8
    model_dim: int = 128
    heads: int = 4
    layers: int = 2  # each = spatial attention + temporal attention
    gp_weight: float = 10.0  # for loss=wgan-gp
    max_frames: int = 256


@dataclass(frozen=True)
class LossConfig:
    """Weights of every loss component; a component's task is fixed (docs/ARCHITECTURE.md)."""

    recon: float = 1.0
    kl_z: float = 1.0
    kl_sticks: float = 1.0
    kl_alpha: float = 1.0
    free_nats: float = 0.0  # KL(q(z) || mixture) below this per step is not penalised
    # KL balancing (DreamerV2): a * KL(sg(q) || p) + (1 - a) * KL(q || sg(p)); a > 0.5 trains the prior
    # towards the posterior faster than it pulls the posterior towards the prior. None: the plain KL.
    kl_balance: float | None = None
    # One-step prediction loss (task "prediction"): -log p(o_t) decoded from the prior's z_t instead of
    # the posterior's, so decoder, prior and dynamics learn the prediction imagination makes. 0: off.
    prior_recon: float = 0.0
    # Open-loop prediction loss (task "prediction", aime/models/overshoot.py): from overshoot_starts
    # points of each window, after overshoot_context observed frames, the prior imagines
    # overshoot_steps frames on its own predictions, as evaluation does; -log p of the real frames.
    # 0: off. Windows (train.seq_len) need at least overshoot_context + overshoot_steps steps.
    overshoot: float = 0.0
    overshoot_steps: int = 10
    overshoot_context: int = 5
    overshoot_starts: int = 2
    token_ce: float = 1.0
    vq: float = 1.0
    tokenizer_recon: float = 1.0
    attention_kl: float = 1.0
    slot_diversity: float = 0.1
    attention_movement: float = 0.1
    attention_state_kl: float = 0.01
    adversarial: float = 0.1
    feature_matching: float = 1.0
    discriminator: float = 1.0

    def __post_init__(self) -> None:
        if self.kl_balance is not None and not 0.0 <= self.kl_balance <= 1.0:
            raise ValueError(f"kl_balance must be in [0, 1] or null, got {self.kl_balance}")
        if self.overshoot < 0:
            raise ValueError(f"overshoot must be >= 0, got {self.overshoot}")
        for name in ("overshoot_steps", "overshoot_context", "overshoot_starts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class BalancingConfig:
    mode: Literal["rgb", "sum"] = "rgb"
    consensus_decay: float = 0.9  # EMA of the consensus direction
    proximity: float = 0.5  # in (0, 1]: 1 keeps every task gradient, -> 0 rotates onto the consensus
    scale: Literal["mean_norm", "unit"] = "mean_norm"  # length of the balanced update


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    grad_clip: float = 5.0
    perception_lr_scale: float = 1.0  # bottleneck and predictor
    tokenizer_lr_scale: float = 0.01  # the tokenizer after pre-training ("frozen" softly)
    balancing: BalancingConfig = field(default_factory=BalancingConfig)


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 64  # must equal env.image_size
    action_dim: int = 6  # must equal the environment's action dimension
    latent_dim: int = 36  # z_t
    vae: VAEConfig = field(default_factory=VAEConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        stages = len(self.vae.channels)
        if self.image_size % (2**stages) or self.image_size // 2**stages < 2:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**len(vae.channels) = {2**stages} "
                "and leave at least 2x2"
            )
        if self.attention.enabled:
            ratio = self.image_size // self.attention.map_size
            if self.image_size % self.attention.map_size or ratio < 2 or ratio & (ratio - 1):
                raise ValueError(
                    f"attention.map_size {self.attention.map_size} must divide image_size "
                    f"{self.image_size} by a power of two >= 2"
                )
        if self.perception.enabled and self.image_size % 4:
            raise ValueError(f"image_size {self.image_size} must be divisible by 4 for the tokenizer")
        if self.adversarial.enabled and self.image_size % self.adversarial.patch_size:
            raise ValueError(
                f"adversarial.patch_size {self.adversarial.patch_size} must divide {self.image_size}"
            )
        if self.prior.components < 2:
            raise ValueError(f"prior.components must be >= 2, got {self.prior.components}")
        if not 0.0 < self.optim.balancing.proximity <= 1.0:
            raise ValueError(
                f"optim.balancing.proximity must be in (0, 1], got {self.optim.balancing.proximity}"
            )
