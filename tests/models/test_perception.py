"""Perception: tokenizer shapes and causality, the vector quantiser, c_t causality, the KV-cache decoder."""

import pytest
import torch

from aime.models.perception import PerceptionStream, Tokenizer, TokenPredictor, VectorQuantizer
from aime.models.perception.transformer import episode_causal_mask


def make_stream(cfg) -> PerceptionStream:
    torch.manual_seed(0)
    return PerceptionStream(cfg.perception, image_size=cfg.image_size, action_dim=cfg.action_dim)


@pytest.mark.parametrize("preset", ["tiny_cfg", "default_cfg"])
def test_stream_shapes(preset, request):
    cfg = request.getfixturevalue(preset)
    stream = make_stream(cfg)
    B, T, S, g = 1, 3, cfg.image_size, cfg.image_size // 4
    frames = torch.rand(B, T, 3, S, S) * 2 - 1
    reset = torch.zeros(B, T, dtype=torch.bool)
    with torch.no_grad():
        out = stream(frames, torch.zeros(B, T, cfg.action_dim), reset)
    assert out.context.shape == (B, T, cfg.perception.context_dim)
    assert out.ids.shape == (B, T, g, g) and out.tokenizer_recon.shape == frames.shape
    assert out.token_logits.shape == (B, T - 1, g * g, cfg.perception.codebook_size)
    assert bool(torch.isfinite(PerceptionStream.token_cross_entropy(out)))


def test_context_is_causal(tiny_cfg):
    """Changing frame t+1 leaves c_<=t unchanged; it changes c_{t+1}."""
    stream = make_stream(tiny_cfg)
    S = tiny_cfg.image_size
    frames = torch.rand(2, 6, 3, S, S) * 2 - 1
    stream.tokenizer(frames)  # one training pass seeds the codebook from data, so tokens differ
    stream.eval()
    reset = torch.zeros(2, 6, dtype=torch.bool)
    edited = frames.clone()
    edited[:, 4] = torch.rand(2, 3, S, S) * 2 - 1
    with torch.no_grad():
        a, b = stream.context(frames, reset), stream.context(edited, reset)
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=0)
    assert not torch.allclose(a[:, 4], b[:, 4])


def test_context_does_not_attend_across_episode_boundaries():
    mask = episode_causal_mask(torch.tensor([[True, False, True, False]]))
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask[0, 0], expected)


def test_tokenizer_keeps_time_and_divides_space_by_four():
    tok = Tokenizer(
        channels=(8, 8),
        code_dim=4,
        codebook_size=16,
        time_kernel=3,
        commitment=0.25,
        ema_decay=0.9,
        dead_threshold=0.5,
    )
    out = tok(torch.rand(2, 5, 3, 64, 64) * 2 - 1)
    assert out.ids.shape == (2, 5, 16, 16) and out.quantized.shape == (2, 5, 4, 16, 16)
    loss, metrics = tok.pretrain_loss(torch.rand(1, 2, 3, 64, 64) * 2 - 1)
    loss.backward()
    assert set(metrics) == {"tokenizer/recon", "tokenizer/vq", "tokenizer/perplexity"}
    assert all(p.grad is not None for p in tok.encoder.parameters())  # straight-through reaches the encoder


def test_quantizer_ema_seeding_perplexity_and_straight_through():
    torch.manual_seed(0)
    vq = VectorQuantizer(codebook_size=8, dim=2, decay=0.5, commitment=0.25, dead_threshold=0.1)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    x = (centres.repeat(50, 1) + 0.01 * torch.randn(200, 2)).requires_grad_(True)
    for _ in range(10):
        out = vq(x)
    # Codes were seeded from the data and moved to the means of what they quantise: every vector
    # lands on a code next to its own cluster (8 codes share the 4 clusters).
    torch.testing.assert_close(vq.codebook[out.ids], x.detach(), atol=0.05, rtol=0)
    assert 4.0 - 1e-4 < float(out.perplexity) <= 8.0 + 1e-4
    out.quantized.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))  # straight-through: identity gradient
    vq.eval()
    before = vq.codebook.clone()
    vq(x + 1.0)
    assert torch.equal(before, vq.codebook)  # no updates outside training


def test_quantizer_statistics_go_through_the_injected_reduce():
    calls = []

    def reduce(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t

    vq = VectorQuantizer(
        codebook_size=4, dim=3, decay=0.9, commitment=0.25, dead_threshold=0.1, reduce=reduce
    )
    vq(torch.randn(10, 3))
    assert (4, 3) in calls and (4,) in calls  # re-seed candidates / sums, and counts


def test_predictor_kv_cache_generation_matches_full_recomputation():
    torch.manual_seed(0)
    pred = TokenPredictor(
        codebook_size=11, tokens_per_frame=6, model_dim=16, heads=2, layers=2, cond_dim=5
    ).eval()
    cond = torch.randn(3, 5)
    cached = pred.generate(cond, temperature=0.0)
    # Greedy decoding without a cache: rerun the teacher-forced pass on the prefix each time.
    ids = torch.zeros(3, 6, dtype=torch.long)
    with torch.no_grad():
        for i in range(6):
            ids[:, i] = pred(cond, ids)[:, i].argmax(-1)
    assert torch.equal(cached, ids)
    sampled = pred.generate(cond, temperature=1.0)
    assert sampled.shape == (3, 6) and int(sampled.max()) < 11


def test_token_cross_entropy_masks_transitions_into_a_new_episode(tiny_cfg):
    stream = make_stream(tiny_cfg)
    S = tiny_cfg.image_size
    reset = torch.tensor([[True, False, True]])
    out = stream(torch.rand(1, 3, 3, S, S) * 2 - 1, torch.zeros(1, 3, tiny_cfg.action_dim), reset)
    assert out.token_mask.tolist() == [[True, False]]
    out.token_logits = out.token_logits.detach().clone()
    out.token_logits[:, 1] = 1e4 * torch.randn_like(out.token_logits[:, 1])  # garbage on the masked step
    ce = PerceptionStream.token_cross_entropy(out)
    out.token_logits[:, 1] = 0.0
    assert float(ce) == float(PerceptionStream.token_cross_entropy(out))
