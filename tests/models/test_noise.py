"""Per-sample noise: a sample's draws depend on its seed alone, never on the rest of the batch."""

from __future__ import annotations

import torch
from model_helpers import load_preset

from aime.models import WorldModel, noise


def test_a_rows_draws_follow_its_seed_whatever_the_batch():
    like = torch.zeros(3, 5)
    with noise.per_sample_noise([7, 8, 9]):
        batch = noise.randn_like(like), noise.rand_like(like)
    with noise.per_sample_noise([8]):
        alone = noise.randn_like(like[:1]), noise.rand_like(like[:1])
    assert torch.equal(batch[0][1], alone[0][0]) and torch.equal(batch[1][1], alone[1][0])
    assert not torch.equal(batch[0][0], batch[0][1])
    torch.manual_seed(0)
    outside = noise.randn_like(like)  # outside the scope: torch's global generator, as before
    torch.manual_seed(0)
    assert torch.equal(outside, torch.randn_like(like))


def test_imagination_of_a_sample_does_not_depend_on_its_batch_mates():
    cfg = load_preset("tiny")
    torch.manual_seed(0)
    model = WorldModel(cfg).eval()
    S, A = cfg.image_size, cfg.action_dim
    obs = torch.randint(0, 256, (3, 4, 3, S, S), dtype=torch.uint8)
    action, future = torch.rand(3, 4, A) * 2 - 1, torch.rand(3, 5, A) * 2 - 1
    with noise.per_sample_noise([1, 2, 3]):
        batched = model.imagine(obs, action, future, temperature=1.0)
    torch.manual_seed(123)  # a different global stream must not matter either
    with noise.per_sample_noise([2]):
        alone = model.imagine(obs[1:2], action[1:2], future[1:2], temperature=1.0)
    torch.testing.assert_close(batched[1:2], alone, rtol=1e-5, atol=1e-5)
    with noise.per_sample_noise([1, 9, 3]):
        other_seed = model.imagine(obs, action, future, temperature=1.0)
    assert not torch.allclose(other_seed[1], batched[1])
