"""WorldModel: the pillars wired into one variational recurrent model of pixel sequences.

Per step t (storage convention: ``action[:, t]`` is taken after observing ``obs[:, t]``):

    c_t          = perception(o_<=t)                         parallel over t, causal
    map_t, A_t   = attention posterior(o_t | h_{t-1}, c_t)    in the loop
    z_t          ~ q(z_t | o_t, h_{t-1}, c_t)                 in the loop
    h_t          = LSTM(h_{t-1}, [z_t, c_t, A_t, action_t])   in the loop
    p(z_t)       = DPGMM(h_{t-1}, c_{t-1}, action_{t-1})      parallel, after the loop
    p(o_t)       = decoder(z_t, h_{t-1} [, o_{t-1}])           parallel, after the loop

h_{t-1}, c_{t-1} and action_{t-1} are the learned initial state / zeros wherever a new episode
starts (is_first, and always at t = 0). See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from aime.models.adversarial import TemporalDiscriminator
from aime.models.attention.maps import uniform_slot_maps
from aime.models.attention.schema import AttentionSchema
from aime.models.common import (
    Reduce,
    count_parameters,
    episode_resets,
    evaluating,
    identity_reduce,
    shift_right,
)
from aime.models.config import ModelConfig
from aime.models.dynamics import Dynamics
from aime.models.imagine import imagine
from aime.models.losses import compute_losses
from aime.models.outputs import LossOutput, WorldModelOutput
from aime.models.overshoot import overshoot, start_steps
from aime.models.perception import PerceptionStream
from aime.models.prior import DPGMMPrior
from aime.models.rollout import Rollout, observe
from aime.models.rollout_compile import RolloutCompileMode, check_mode
from aime.models.vae import FrameDecoder, FrameEncoder, Posterior, make_likelihood


@contextmanager
def eager_rollout(model: WorldModel) -> Iterator[None]:
    """The rollout loop in eager mode for the duration (see ``WorldModel.compile_rollout``), then as before.

    For occasional passes of another shape, such as evaluation inside training: compiling (and, with
    CUDA graphs, recording into a second memory pool) for a handful of batches costs more than it saves.
    """
    mode = model.rollout_compile
    model.compile_rollout(None)
    try:
        yield
    finally:
        model.compile_rollout(mode)


class WorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig, *, reduce: Reduce = identity_reduce):
        """``reduce`` averages a tensor over data-parallel ranks (codebook EMA); a no-op by default."""
        super().__init__()
        self.cfg = cfg
        Z, H, A = cfg.latent_dim, cfg.dynamics.hidden_dim, cfg.action_dim
        self.context_dim = cfg.perception.context_dim if cfg.perception.enabled else 0
        self.state_dim = cfg.attention.state_dim if cfg.attention.enabled else 0
        v = cfg.vae
        self.likelihood = make_likelihood(v.output, components=v.mixture_components, std=v.gaussian_std)
        self.encoder = FrameEncoder(
            image_size=cfg.image_size,
            channels=v.channels,
            blocks_per_stage=v.blocks_per_stage,
            embed_dim=v.embed_dim,
            spectral=v.spectral_norm,
        )
        self.posterior = Posterior(
            in_dim=v.embed_dim + H + self.context_dim,
            hidden_dim=v.hidden_dim,
            latent_dim=Z,
            min_std=v.min_std,
        )
        self.decoder = FrameDecoder(
            in_dim=Z + H,
            image_size=cfg.image_size,
            channels=v.channels,
            blocks_per_stage=v.blocks_per_stage,
            out_channels=self.likelihood.param_channels,
            previous_channels=3 if v.residual else 0,
        )
        self.dynamics = Dynamics(
            input_dim=Z + self.context_dim + self.state_dim + A, hidden_dim=H, layers=cfg.dynamics.layers
        )
        p = cfg.prior
        self.prior = DPGMMPrior(
            in_dim=H + self.context_dim + A,
            hidden_dim=p.hidden_dim,
            latent_dim=Z,
            components=p.components,
            min_std=p.min_std,
            alpha_prior_shape=p.alpha_prior_shape,
            alpha_prior_rate=p.alpha_prior_rate,
            series_terms=p.series_terms,
            mc_samples=p.mc_samples,
        )
        # The optional pillars, in this order (parameter initialisation draws from one seeded stream).
        self.perception = _perception(cfg, reduce)
        self.attention = _attention(cfg, self.context_dim)
        self.discriminator = _discriminator(cfg)
        self._frozen: set[str] = set()
        self.rollout_compile: RolloutCompileMode | None = None  # see compile_rollout

    # ----------------------------------------------------------------------------------- forward
    def forward(self, obs: Tensor, action: Tensor, is_first: Tensor) -> WorldModelOutput:
        """obs uint8 (B, T, 3, H, W), action float (B, T, A), is_first bool (B, T)."""
        self.validate(obs, action, is_first)
        frames = obs.float() / 127.5 - 1.0  # (B, T, 3, H, W) in [-1, 1]
        reset = episode_resets(is_first)
        perception = self.perception(frames, action, reset) if self.perception is not None else None
        # The open-loop loss is a training loss: evaluation and figures pass windows of any length.
        open_loop = self.training and self.cfg.loss.overshoot > 0
        starts = start_steps(self.cfg.loss, obs.shape[1]) if open_loop else ()
        context = perception.context if perception else None
        roll = self._rollout(frames, action, reset, context, sample=True, keep_states=starts)
        c_prev = shift_right(roll.context, reset)
        a_prev = shift_right(action, reset)
        prior = self.prior(torch.cat([roll.h_prev, c_prev, a_prev], dim=-1))
        previous = shift_right(frames, reset)  # o_{t-1}, zeros at episode starts
        recon_params = self.decode(roll.z, roll.h_prev, previous)  # (B, T, P, H, W)
        mean = self.likelihood.mean(recon_params.flatten(0, 1)).view_as(frames)
        out = WorldModelOutput(
            reconstruction=(mean + 1.0) / 2.0,
            recon_params=recon_params,
            posterior_mean=roll.q_mean,
            posterior_std=roll.q_std,
            z=roll.z,
            prior=prior,
            reset=reset,
            perception=perception,
            context=perception.context if perception else None,
            activations=roll.activations(),
        )
        if self.cfg.loss.prior_recon > 0:  # the one-step prediction, trained directly
            out.prior_recon_params = self.decode(self.prior.sample(prior, 0.0), roll.h_prev, previous)
        if starts:  # the open-loop prediction, trained directly
            out.open_loop = overshoot(self, roll, frames, action, reset, starts)
        if self.attention is not None:
            self._attention_prior(out, roll)
        return out

    def compile_rollout(self, mode: RolloutCompileMode | None = "default") -> WorldModel:
        """Run the per-frame posterior step (the sequential loop, launch-bound on a GPU) under
        ``torch.compile(mode=mode)`` from now on; ``None`` goes back to eager. The same math: only
        kernel fusion, CUDA graphs with ``reduce-overhead`` (and, with inductor, its own random
        stream for the z_t noise)."""
        check_mode(mode)
        self.rollout_compile = mode
        return self

    def decode(self, z: Tensor, h_prev: Tensor, previous: Tensor) -> Tensor:
        """Pixel-likelihood params (B, T, P, H, W) from z (B, T, Z), h_{t-1} (B, T, H) and, used only
        with ``vae.residual``, the previous frames (B, T, 3, H, W) in [-1, 1] (zeros at episode starts)."""
        if not self.cfg.vae.residual:
            return self.decoder(torch.cat([z, h_prev], dim=-1))
        params = self.decoder(torch.cat([z, h_prev], dim=-1), previous)
        shifted = self.likelihood.shift(params.flatten(0, 1), previous.flatten(0, 1).to(params.dtype))
        return shifted.view_as(params)

    def _rollout(
        self,
        frames: Tensor,
        action: Tensor,
        reset: Tensor,
        context: Tensor | None,
        *,
        sample: bool,
        keep_states: tuple[int, ...] = (),
    ) -> Rollout:
        B, T = frames.shape[:2]
        context = context if context is not None else frames.new_zeros(B, T, 0)
        features = self.attention.pyramid(frames) if self.attention is not None else None
        return observe(
            self,
            embed=self.encoder(frames),
            features=features,
            context=context,
            action=action,
            reset=reset,
            sample=sample,
            keep_states=keep_states,
        )

    def _attention_prior(self, out: WorldModelOutput, roll: Rollout) -> None:
        assert self.attention is not None and roll.slot_maps is not None and roll.fused is not None
        B, T, K, N = roll.slot_maps.shape
        M = self.attention.map_size
        uniform = uniform_slot_maps(B, K, N, like=roll.slot_maps).unsqueeze(1)
        prev_maps = torch.where(out.reset[:, :, None, None], uniform, shift_right(roll.slot_maps, out.reset))
        cond = torch.cat([roll.h_prev, shift_right(roll.z, out.reset)], dim=-1)
        _, prior_fused = self.attention.prior(prev_maps, cond)
        out.attention_map = roll.fused.view(B, T, M, M)
        out.attention_prior_map = prior_fused.view(B, T, M, M)
        out.slot_maps = roll.slot_maps.view(B, T, K, M, M)
        out.attention_state_mean, out.attention_state_std = roll.state_mean, roll.state_std

    def losses(self, output: WorldModelOutput, batch: Mapping[str, Tensor]) -> LossOutput:
        return compute_losses(self, output, batch)

    @torch.no_grad()
    def encode(
        self, obs: Tensor, action: Tensor, is_first: Tensor, *, sample: bool = False
    ) -> dict[str, Tensor]:
        """Per-step features {"z", "h", "h_prev", "embed", ["c"], ["attention_state"]}, each (B, T, D).

        With ``sample=False`` z_t and A_t are posterior means, so the features are deterministic. Runs
        in eval mode: encoding must not move the codebook or the spectral-norm estimates.
        """
        self.validate(obs, action, is_first)
        frames = obs.float() / 127.5 - 1.0
        reset = episode_resets(is_first)
        with evaluating(self):
            context = self.perception.context(frames, reset) if self.perception is not None else None
            return self._rollout(frames, action, reset, context, sample=sample).activations()

    @torch.no_grad()
    def imagine(
        self, context_obs: Tensor, context_action: Tensor, future_action: Tensor, temperature: float = 1.0
    ) -> Tensor:
        """Frames (B, H, 3, S, S) in [0, 1] following the context; see ``aime.models.imagine``."""
        return imagine(self, context_obs, context_action, future_action, temperature=temperature)

    # ------------------------------------------------------------------------------ validation
    def validate(self, obs: Tensor, action: Tensor, is_first: Tensor) -> None:
        S, A = self.cfg.image_size, self.cfg.action_dim
        _check(
            obs,
            "obs",
            f"uint8 [B, T, 3, {S}, {S}]",
            dtype_ok=obs.dtype == torch.uint8,
            rank=5,
            tail=(3, S, S),
        )
        B, T = obs.shape[:2]
        _check(
            action,
            "action",
            f"floating [{B}, {T}, {A}]",
            dtype_ok=action.is_floating_point(),
            rank=3,
            tail=(A,),
            lead=(B, T),
        )
        _check(
            is_first,
            "is_first",
            f"bool [{B}, {T}]",
            dtype_ok=is_first.dtype == torch.bool,
            rank=2,
            tail=(),
            lead=(B, T),
        )
        if T < 1 or B < 1:
            raise ValueError(f"obs: expected B >= 1 and T >= 1, got shape {list(obs.shape)}")

    # --------------------------------------------------------------------- components and freezing
    def component(self, name: str) -> nn.Module:
        """A component by dotted name, e.g. ``"prior"`` or ``"perception.tokenizer"``."""
        try:
            module = self.get_submodule(name)
        except AttributeError as error:
            raise KeyError(
                f"unknown component {name!r}; top-level components: {list(self.components())}"
            ) from error
        return module

    def components(self) -> dict[str, nn.Module]:
        return {name: module for name, module in self.named_children()}

    def freeze(self, name: str) -> None:
        """No gradients and eval mode (no codebook EMA, no spectral-norm updates) for a component."""
        module = self.component(name)
        module.requires_grad_(False)
        module.eval()
        self._frozen.add(name)

    def unfreeze(self, name: str) -> None:
        module = self.component(name)
        module.requires_grad_(True)
        module.train(self.training)
        self._frozen.discard(name)

    @property
    def frozen(self) -> frozenset[str]:
        return frozenset(self._frozen)

    def train(self, mode: bool = True) -> WorldModel:
        super().train(mode)
        for name in self._frozen:  # frozen components stay in eval whatever the model's mode
            self.component(name).eval()
        return self

    def parameter_counts(self, *, trainable_only: bool = False) -> dict[str, int]:
        counts = {
            name: count_parameters(m, trainable_only=trainable_only) for name, m in self.components().items()
        }
        if self.perception is not None:
            for name, m in self.perception.named_children():
                counts[f"perception.{name}"] = count_parameters(m, trainable_only=trainable_only)
        counts["total"] = count_parameters(self, trainable_only=trainable_only)
        return counts

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: the tokenizer and the rest of perception get their configured lr scales."""
        o = self.cfg.optim
        groups: dict[str, list[nn.Parameter]] = {"tokenizer": [], "perception": [], "main": []}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            key = (
                "tokenizer"
                if name.startswith("perception.tokenizer.")
                else "perception"
                if name.startswith("perception.")
                else "main"
            )
            groups[key].append(param)
        scale = {"tokenizer": o.tokenizer_lr_scale, "perception": o.perception_lr_scale, "main": 1.0}
        return [{"name": k, "params": v, "lr": lr * scale[k]} for k, v in groups.items() if v]


def _check(
    x: Tensor,
    name: str,
    expected: str,
    *,
    dtype_ok: bool,
    rank: int,
    tail: tuple[int, ...],
    lead: tuple[int, ...] | None = None,
) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a tensor {expected}, got {type(x).__name__}")
    shape = tuple(x.shape)
    ok = dtype_ok and x.dim() == rank and (not tail or shape[rank - len(tail) :] == tail)
    ok = ok and (lead is None or shape[: len(lead)] == lead)
    if not ok:
        raise ValueError(
            f"{name}: expected {expected}, got {str(x.dtype).removeprefix('torch.')} {list(shape)}"
        )


def _perception(cfg: ModelConfig, reduce: Reduce) -> PerceptionStream | None:
    """The perception stream (context c), when ``perception.enabled``."""
    if not cfg.perception.enabled:
        return None
    return PerceptionStream(
        cfg.perception, image_size=cfg.image_size, action_dim=cfg.action_dim, reduce=reduce
    )


def _attention(cfg: ModelConfig, context_dim: int) -> AttentionSchema | None:
    """The attention schema (its state feeds the dynamics), when ``attention.enabled``."""
    if not cfg.attention.enabled:
        return None
    return AttentionSchema(
        cfg.attention,
        image_size=cfg.image_size,
        hidden_dim=cfg.dynamics.hidden_dim,
        context_dim=context_dim,
        latent_dim=cfg.latent_dim,
    )


def _discriminator(cfg: ModelConfig) -> TemporalDiscriminator | None:
    """The temporal discriminator of the adversarial loss, when ``adversarial.enabled``."""
    d = cfg.adversarial
    if not d.enabled:
        return None
    return TemporalDiscriminator(
        image_size=cfg.image_size,
        patch_size=d.patch_size,
        latent_dim=cfg.latent_dim,
        model_dim=d.model_dim,
        heads=d.heads,
        layers=d.layers,
        max_frames=d.max_frames,
    )
