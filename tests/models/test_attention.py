"""Attention schema: maps are distributions, top-down conditioning steers them, losses behave."""

import pytest
import torch

from aime.models.attention import (
    AttentionPrior,
    AttentionState,
    FeaturePyramid,
    SlotAttentionPosterior,
    centroid,
    kl_maps,
    movement,
    slot_diversity,
)
from aime.models.attention.schema import AttentionSchema


@pytest.mark.parametrize("preset", ["tiny_cfg", "default_cfg"])
def test_schema_shapes(preset, request):
    cfg = request.getfixturevalue(preset)
    a = cfg.attention
    torch.manual_seed(0)
    schema = AttentionSchema(a, image_size=cfg.image_size, hidden_dim=10, context_dim=3, latent_dim=4)
    N = a.map_size**2
    feats = schema.pyramid(torch.rand(2, 3, 3, cfg.image_size, cfg.image_size))
    assert feats.shape == (2, 3, N, a.feature_dim)
    slots = schema.posterior(feats[:, 0], torch.randn(2, 13))
    assert slots.slot_maps.shape == (2, a.slots, N) and slots.fused.shape == (2, N)
    torch.testing.assert_close(slots.slot_maps.sum(-1), torch.ones(2, a.slots))
    torch.testing.assert_close(slots.fused.sum(-1), torch.ones(2))
    prior_maps, prior_fused = schema.prior(
        slots.slot_maps.unsqueeze(1).expand(-1, 3, -1, -1), torch.randn(2, 3, 14)
    )
    assert prior_maps.shape == (2, 3, a.slots, N) and prior_fused.shape == (2, 3, N)
    torch.testing.assert_close(prior_fused.sum(-1), torch.ones(2, 3))
    sample, mean, std = schema.state(slots.fused)
    assert sample.shape == mean.shape == std.shape == (2, a.state_dim)


def test_top_down_input_changes_where_the_posterior_looks():
    torch.manual_seed(0)
    pyramid = FeaturePyramid(image_size=32, map_size=8, feature_dim=8)
    post = SlotAttentionPosterior(feature_dim=8, slot_dim=8, slots=3, iterations=2, cond_dim=4, hidden_dim=16)
    feats = pyramid(torch.rand(1, 1, 3, 32, 32))[:, 0]
    a, b = post(feats, torch.zeros(1, 4)), post(feats, torch.full((1, 4), 3.0))
    assert not torch.allclose(a.fused, b.fused)


def test_map_losses():
    peaked = torch.zeros(1, 16)
    peaked[0, 5] = 1.0
    uniform = torch.full((1, 16), 1 / 16)
    assert float(kl_maps(uniform, uniform)) == pytest.approx(0.0, abs=1e-5)
    assert float(kl_maps(peaked, uniform)) > 0
    disjoint = torch.eye(4).view(1, 4, 4)  # 4 slots, 4 locations each on its own
    assert float(slot_diversity(disjoint)) == pytest.approx(0.0, abs=1e-6)
    assert float(slot_diversity(uniform.view(1, 1, 16).expand(1, 3, 16))) == pytest.approx(1.0, abs=1e-5)


def test_movement_and_centroid():
    left, right = torch.zeros(4, 4), torch.zeros(4, 4)
    left[1, 0], right[1, 3] = 1.0, 1.0
    torch.testing.assert_close(centroid(left.view(1, 16), 4), torch.tensor([[-1 / 3, -1.0]]))
    maps = torch.stack([left, right, right]).view(1, 3, 16)
    moved = movement(maps, torch.tensor([[True, False, False]]), 4)
    torch.testing.assert_close(moved, torch.tensor([[0.0, 4.0, 0.0]]))
    assert float(movement(maps, torch.tensor([[True, True, False]]), 4)[0, 1]) == 0.0  # episode start


def test_state_is_reparameterised_and_deterministic_at_temperature_zero():
    torch.manual_seed(0)
    state = AttentionState(map_size=8, hidden_dim=16, state_dim=4)
    fused = torch.softmax(torch.randn(3, 64), -1).requires_grad_(True)
    sample, mean, _ = state(fused, temperature=0.0)
    torch.testing.assert_close(sample, mean)
    state(fused)[0].sum().backward()
    assert fused.grad is not None and bool(fused.grad.abs().sum() > 0)


def test_prior_from_uniform_maps_is_finite():
    prior = AttentionPrior(slots=2, map_size=4, cond_dim=3, hidden_dim=16)
    maps, fused = prior(torch.full((1, 2, 2, 16), 1 / 16), torch.zeros(1, 2, 3))
    assert bool(torch.isfinite(maps).all() and torch.isfinite(fused).all())
