"""The model object: shapes, gradients, ablations, validation, determinism, freezing, imagination."""

import dataclasses

import pytest
import torch
from model_helpers import moving_squares, with_pillars

from aime.models import WorldModel


def build(cfg, seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(cfg)


def train_steps(model: WorldModel, batch, steps: int, lr: float = 1e-3) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    totals = []
    for _ in range(steps):
        out = model(batch["obs"], batch["action"], batch["is_first"])
        loss = model.losses(out, batch)
        opt.zero_grad()
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), model.cfg.optim.grad_clip)
        opt.step()
        totals.append(float(loss.total.detach()))
    return totals


def assert_output_shapes(cfg, out, B: int, T: int) -> None:
    S, Z, K = cfg.image_size, cfg.latent_dim, cfg.prior.components
    assert out.reconstruction.shape == (B, T, 3, S, S)
    assert out.posterior_mean.shape == out.posterior_std.shape == out.z.shape == (B, T, Z)
    assert out.prior.log_pi.shape == (B, T, K) and out.prior.means.shape == (B, T, K, Z)
    acts = out.activations
    assert acts["z"].shape == (B, T, Z) and acts["h"].shape == (B, T, cfg.dynamics.hidden_dim)
    if cfg.perception.enabled:
        assert out.context.shape == acts["c"].shape == (B, T, cfg.perception.context_dim)
        grid = S // 4
        assert out.perception.ids.shape == (B, T, grid, grid)
        assert out.perception.token_logits.shape == (B, T - 1, grid * grid, cfg.perception.codebook_size)
    if cfg.attention.enabled:
        M, slots = cfg.attention.map_size, cfg.attention.slots
        assert out.attention_map.shape == out.attention_prior_map.shape == (B, T, M, M)
        assert out.slot_maps.shape == (B, T, slots, M, M)
        assert acts["attention_state"].shape == (B, T, cfg.attention.state_dim)
        torch.testing.assert_close(out.attention_map.sum((-1, -2)), torch.ones(B, T), atol=1e-4, rtol=0)


def test_tiny_forward_shapes_and_losses(tiny_cfg):
    cfg = with_pillars(tiny_cfg, adversarial=True)
    model = build(cfg)
    batch = moving_squares(cfg, batch=2, steps=5)
    out = model(batch["obs"], batch["action"], batch["is_first"])
    assert_output_shapes(cfg, out, 2, 5)
    loss = model.losses(out, batch)
    assert set(loss.tasks) == {"elbo", "perception", "attention", "adversarial"}
    for name, value in {**loss.components, **loss.metrics}.items():
        assert value.shape == () and bool(torch.isfinite(value)), name
    for name in ("elbo/kl_sticks", "elbo/kl_alpha", "attention/kl", "perception/token_ce"):
        assert float(loss.components[name].detach()) >= 0.0, name


def test_default_forward_shapes(default_cfg):
    cfg = with_pillars(default_cfg, adversarial=True)
    model = build(cfg)
    batch = moving_squares(cfg, batch=1, steps=2)
    with torch.no_grad():
        out = model(batch["obs"], batch["action"], batch["is_first"])
        loss = model.losses(out, batch)
    assert_output_shapes(cfg, out, 1, 2)
    assert out.perception.ids.shape[-2:] == (16, 16)  # 64x64 frames -> 16x16 tokens
    assert out.attention_map.shape[-2:] == (32, 32)
    assert bool(torch.isfinite(loss.total))


def test_every_trainable_parameter_gets_a_finite_gradient(tiny_cfg):
    for kind in ("hinge", "wgan-gp"):
        cfg = dataclasses.replace(
            tiny_cfg, adversarial=dataclasses.replace(tiny_cfg.adversarial, enabled=True, loss=kind)
        )
        model = build(cfg)
        batch = moving_squares(cfg, batch=2, steps=4)
        model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch).total.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        bad = [
            n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        assert not missing and not bad, (kind, missing, bad)


def test_generator_loss_reaches_the_decoder_and_not_the_discriminator(tiny_cfg):
    cfg = with_pillars(tiny_cfg, adversarial=True, perception=False, attention=False)
    model = build(cfg)
    batch = moving_squares(cfg, batch=2, steps=3)
    loss = model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch)
    loss.components["adversarial/generator"].backward(retain_graph=True)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())


@pytest.mark.parametrize("off", ["perception", "attention", "adversarial", "all"])
def test_each_pillar_can_be_switched_off_and_the_model_still_trains(tiny_cfg, off):
    flags = {"perception": True, "attention": True, "adversarial": True}
    flags = {k: (k != off and off != "all") for k in flags}
    cfg = with_pillars(tiny_cfg, **flags)
    model = build(cfg)
    assert (getattr(model, off if off != "adversarial" else "discriminator", None) is None) or off == "all"
    batch = moving_squares(cfg, batch=2, steps=3)
    before = [p.detach().clone() for p in model.parameters()]
    totals = train_steps(model, batch, 3)
    assert all(torch.isfinite(torch.tensor(totals)))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    "field,bad,message",
    [
        ("obs", lambda b: b["obs"].float(), r"obs: expected uint8 \[B, T, 3, 32, 32\]"),
        (
            "obs",
            lambda b: b["obs"][:, :, :, :16],
            r"obs: expected uint8 \[B, T, 3, 32, 32\], got uint8 \[2, 3, 3, 16",
        ),
        ("obs", lambda b: b["obs"][0], "obs: expected"),
        ("action", lambda b: b["action"][..., :2], r"action: expected floating \[2, 3, 6\]"),
        ("action", lambda b: b["action"].long(), "action: expected floating"),
        (
            "action",
            lambda b: b["action"][:1],
            r"action: expected floating \[2, 3, 6\], got float32 \[1, 3, 6\]",
        ),
        ("is_first", lambda b: b["is_first"].float(), r"is_first: expected bool \[2, 3\]"),
        ("is_first", lambda b: b["is_first"][:, :2], "is_first: expected"),
    ],
)
def test_input_validation_names_the_expected_shape(tiny_cfg, field, bad, message):
    model = build(with_pillars(tiny_cfg, perception=False, attention=False))
    batch = moving_squares(tiny_cfg, batch=2, steps=3)
    batch[field] = bad(batch)
    with pytest.raises(ValueError, match=message):
        model(batch["obs"], batch["action"], batch["is_first"])


def test_same_seed_same_result_bitwise(tiny_cfg):
    cfg = with_pillars(tiny_cfg, adversarial=True)
    batch = moving_squares(cfg, batch=2, steps=4)
    runs = []
    for _ in range(2):
        model = build(cfg, seed=3)
        torch.manual_seed(7)
        totals = train_steps(model, batch, 2)
        runs.append(
            (
                totals,
                [p.detach().clone() for p in model.parameters()],
                model.encode(batch["obs"], batch["action"], batch["is_first"])["h"],
            )
        )
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert torch.equal(runs[0][2], runs[1][2])


def test_imagine_shapes_and_stays_finite_over_50_steps(tiny_cfg):
    model = build(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=2, steps=4)
    future = torch.rand(2, 50, tiny_cfg.action_dim) * 2 - 1
    state_before = {k: v.clone() for k, v in model.state_dict().items()}
    frames = model.imagine(batch["obs"], batch["action"], future, temperature=1.0)
    assert frames.shape == (2, 50, 3, 32, 32)
    assert bool(torch.isfinite(frames).all()) and float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    assert all(torch.equal(state_before[k], v) for k, v in model.state_dict().items())  # no EMA drift
    assert model.training
    greedy = model.imagine(batch["obs"], batch["action"], future[:, :3], temperature=0.0)
    assert greedy.shape == (2, 3, 3, 32, 32)


def test_imagine_rejects_a_wrong_action_dimension(tiny_cfg):
    model = build(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=1, steps=2)
    with pytest.raises(ValueError, match="future_action"):
        model.imagine(batch["obs"], batch["action"], torch.zeros(1, 3, 2))


def test_encode_is_deterministic_features(tiny_cfg):
    model = build(tiny_cfg)
    batch = moving_squares(tiny_cfg, batch=2, steps=3)
    a = model.encode(batch["obs"], batch["action"], batch["is_first"])
    b = model.encode(batch["obs"], batch["action"], batch["is_first"])
    assert set(a) == {"z", "h", "h_prev", "embed", "c", "attention_state"}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_is_first_resets_the_state_mid_window(tiny_cfg):
    """A window holding two episodes gives the second the same features as a window starting there."""
    cfg = with_pillars(tiny_cfg, perception=False)  # the tokenizer's causal kernel leaks across boundaries
    model = build(cfg)
    batch = moving_squares(cfg, batch=1, steps=5)
    batch["is_first"][:, 2] = True
    whole = model.encode(batch["obs"], batch["action"], batch["is_first"])
    tail = model.encode(batch["obs"][:, 2:], batch["action"][:, 2:], batch["is_first"][:, 2:])
    torch.testing.assert_close(whole["h"][:, 2:], tail["h"])


def test_freeze_and_unfreeze(tiny_cfg):
    model = build(tiny_cfg)
    model.freeze("perception.tokenizer")
    assert all(not p.requires_grad for p in model.perception.tokenizer.parameters())
    model.train()
    assert not model.perception.tokenizer.training and model.perception.bottleneck.training
    batch = moving_squares(tiny_cfg, batch=2, steps=3)
    codebook = model.perception.tokenizer.quantizer.codebook.clone()
    model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch).total.backward()
    assert torch.equal(codebook, model.perception.tokenizer.quantizer.codebook)  # no EMA while frozen
    assert all(p.grad is None for p in model.perception.tokenizer.parameters())
    model.unfreeze("perception.tokenizer")
    assert model.perception.tokenizer.training and model.frozen == frozenset()
    with pytest.raises(KeyError, match="unknown component"):
        model.freeze("nope")


def test_parameter_counts_and_groups(tiny_cfg):
    model = build(tiny_cfg)
    counts = model.parameter_counts()
    parts = ("encoder", "posterior", "decoder", "dynamics", "prior", "perception", "attention")
    assert sum(counts[k] for k in parts) == counts["total"] == sum(p.numel() for p in model.parameters())
    groups = {g["name"]: g for g in model.param_groups(1e-3)}
    assert groups["tokenizer"]["lr"] == pytest.approx(1e-3 * tiny_cfg.optim.tokenizer_lr_scale)
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_a_frames_tokens_depend_only_on_the_tokenizers_receptive_frames(tiny_cfg):
    """What lets imagination tokenize each imagined frame once (imagine._Perceiving)."""
    torch.manual_seed(0)
    perception = WorldModel(tiny_cfg).perception.eval()
    R = perception.tokenizer.receptive_frames
    assert R == 1 + 3 * (tiny_cfg.perception.time_kernel - 1)  # three causal convs reach back in time
    frames = torch.rand(2, 9, 3, tiny_cfg.image_size, tiny_cfg.image_size) * 2 - 1
    with torch.no_grad():
        whole = perception.tokens(frames)
        for t in range(R - 1, 9):
            assert torch.equal(perception.tokens(frames[:, t - R + 1 : t + 1])[:, -1], whole[:, t])


def test_imagination_runs_past_perceptions_longest_window(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, perception=dataclasses.replace(tiny_cfg.perception, max_frames=6))
    model = build(cfg)
    batch = moving_squares(cfg, batch=2, steps=4)
    frames = model.imagine(batch["obs"], batch["action"], torch.zeros(2, 9, cfg.action_dim), temperature=0.0)
    assert frames.shape[1] == 9 and bool(torch.isfinite(frames).all())
