"""The bank against a loop of separate probes, and bank training on synthetic concepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aime.lenses.bank import LensBank, LensSpec, Probe
from aime.lenses.fit import FitConfig, LensData, fit_bank, predict
from aime.lenses.metrics import auroc, graduates, lens_scores, majority_baseline

DIMS = {"z": 8, "h": 32, "embed": 20}


def _specs() -> list[LensSpec]:
    # Interleaved activations and both standardisation settings: the bank must restore lens order.
    return [
        LensSpec(concept, activation, DIMS[activation], standardise=(i % 3 != 0))
        for i, (concept, activation) in enumerate(
            [(c, a) for c in ("a", "b", "c") for a in ("h", "z", "embed")] + [("d", "z")]
        )
    ]


def _inputs(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, d, generator=g) * 3 + 1 for name, d in DIMS.items()}


def test_bank_equals_loop_of_probes_fp32():
    torch.manual_seed(0)
    specs = _specs()
    probes = [Probe(s.input_dim, s.standardise).eval() for s in specs]
    bank = LensBank.from_probes(specs, probes).eval()
    x = _inputs(33)
    with torch.no_grad():
        expected = torch.stack([p(x[s.activation]) for s, p in zip(specs, probes, strict=True)], dim=1)
        got = bank(x)
    assert got.shape == (33, len(specs))
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()
    # and back out: a lens taken from the bank is the probe it came from
    for i in (0, 4, len(specs) - 1):
        with torch.no_grad():
            assert torch.allclose(bank.probe(i).eval()(x[specs[i].activation]), expected[:, i], atol=1e-6)


def test_bank_bf16_close_to_fp32():
    torch.manual_seed(1)
    bank = LensBank(_specs()).eval()
    x = _inputs(64, seed=1)
    with torch.no_grad():
        full = bank(x)
        half = bank.to(torch.bfloat16)(x)
    assert half.dtype == torch.bfloat16
    error = (half.float() - full).abs().max().item()
    assert error < 0.05 * full.abs().max().item() + 0.02, error
    assert error > 0  # it really ran in bf16


def test_bank_dropout_is_per_lens_and_off_in_eval():
    bank = LensBank([LensSpec("a", "h", 32), LensSpec("a", "h", 32)], dropout=0.5)
    group = bank.groups["h__std"]
    with torch.no_grad():  # two identical lenses
        group.w1[:, 1].copy_(group.w1[:, 0])
        for name in ("b1", "w2", "b2", "w3", "b3"):
            getattr(group, name)[1].copy_(getattr(group, name)[0])
    x = {"h": torch.randn(16, 32)}
    bank.train()
    out = bank(x)
    assert not torch.allclose(out[:, 0], out[:, 1])  # independent masks
    bank.eval()
    out = bank(x)
    assert torch.equal(out[:, 0], out[:, 1])


def _synthetic(rows: int, seed: int) -> LensData:
    """h (rows, 16): concept "lin" is a linear threshold of h, "noise" a coin flip independent of h."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, 16, generator=g)
    direction = torch.linspace(-1, 1, 16)
    lin = h @ direction > 0.3
    noise = torch.rand(rows, generator=g) < 0.5
    return LensData({"h": h}, torch.stack([lin, noise], dim=1), ["lin", "noise"])


def test_bank_training_reads_a_separable_concept_and_not_noise():
    torch.manual_seed(0)
    train, validation, test = _synthetic(3000, 0), _synthetic(600, 1), _synthetic(1000, 2)
    specs = [LensSpec("lin", "h", 16, standardise=False), LensSpec("noise", "h", 16, standardise=False)]
    bank = LensBank(specs)
    cfg = FitConfig(epochs=40, batch_size=128, lr=3e-3, patience=4)
    result = fit_bank(bank, train, validation, cfg, train.concepts.float().mean(0))
    assert result.epochs_run < cfg.epochs  # the noise lens (and the other) stopped early
    assert 1 <= result.best_epoch[1] <= result.epochs_run
    scores = lens_scores(predict(bank, test).numpy(), test.concepts.numpy())
    train_scores = lens_scores(predict(bank, train).numpy(), train.concepts.numpy())
    assert scores["f1"][0] > 0.95, scores
    assert scores["auroc"][0] > 0.99, scores
    assert abs(scores["auroc"][1] - 0.5) < 0.07, scores  # chance: the metric can fail
    assert scores["f1"][1] < 0.6, scores
    assert graduates(train_scores["f1"][0], scores["f1"][0])
    assert not graduates(train_scores["f1"][1], scores["f1"][1])


def test_auroc_and_baseline_against_hand_counts():
    scores = np.array([[0.1], [0.4], [0.35], [0.8]])
    labels = np.array([[False], [False], [True], [True]])
    assert auroc(scores, labels)[0] == pytest.approx(0.75)
    assert np.isnan(auroc(scores, np.zeros((4, 1), bool))[0])
    base = majority_baseline(np.array([0.7, 0.2]), np.array([[True, True], [False, False], [True, False]]))
    assert base["f1"][0] == pytest.approx(2 * (2 / 3) / (1 + 2 / 3)) and base["f1"][1] == 0.0
    assert base["accuracy"][1] == pytest.approx(2 / 3)
    s = lens_scores(np.array([[1.0], [-1.0], [1.0], [-1.0]]), np.array([[True], [True], [False], [False]]))
    assert s["precision"][0] == 0.5 and s["recall"][0] == 0.5 and s["f1"][0] == 0.5


def test_lens_split_keeps_held_out_in_test_and_whole_episodes():
    from aime.lenses.split import LensSplit
    from aime.replay.split import HeldOutSplit

    ids = [f"run-{i:03d}" for i in range(40)]
    held_out = HeldOutSplit(seed=3, eval_fraction=0.1)
    splits = LensSplit(seed=1).assign(ids, held_out)
    assert sorted(sum(splits.values(), [])) == ids  # disjoint and complete
    assert held_out.held_out(ids) <= set(splits["test"])
    assert len(splits["validation"]) == 6 and len(splits["test"]) == 8
    assert splits == LensSplit(seed=1).assign(reversed(ids), held_out)  # a function of the ids alone
    small = LensSplit().assign(["a", "b", "c"], held_out)
    assert all(len(v) == 1 for v in small.values()), small


def test_constant_concepts_are_skipped_and_unknown_names_listed():
    from aime.lenses.activations import Manifest, SplitSummary
    from aime.lenses.train import TrainOptions, choose_lenses

    manifest = Manifest(
        checkpoint="ck",
        step=1,
        config_hash="0" * 16,
        task="synthetic",
        episodes_root="r",
        activations={"h": 32, "z": 8},
        concepts=["on", "off", "mixed"],
        splits={
            "train": SplitSummary(["e1"], rows=10, positives={"on": 10, "off": 0, "mixed": 4}),
            "validation": SplitSummary(["e2"], rows=5),
            "test": SplitSummary(["e3"], rows=5),
        },
        held_out=["e3"],
        created_at="now",
    )
    specs, skipped = choose_lenses(manifest, TrainOptions(out="p"))
    assert [(s.concept, s.activation, s.input_dim) for s in specs] == [("mixed", "h", 32), ("mixed", "z", 8)]
    assert [s["concept"] for s in skipped] == ["on", "off"] and "constant" in skipped[0]["reason"]
    with pytest.raises(ValueError, match="unknown concept.*the dataset has: on, off, mixed"):
        choose_lenses(manifest, TrainOptions(out="p", concepts=["nope"]))


def test_lens_masks_select_exactly_one_lens_weights():
    torch.manual_seed(2)
    specs = _specs()
    bank = LensBank(specs).eval()
    x = _inputs(8, seed=2)
    with torch.no_grad():
        before = bank(x)
        flags = torch.zeros(len(specs), dtype=torch.bool)
        flags[4] = True
        masks = bank.lens_masks(flags)
        for name, p in bank.named_parameters():
            p.copy_(torch.where(masks[name], p, torch.zeros_like(p)))
        after = bank(x)
    assert torch.equal(after[:, 4], before[:, 4])
    assert torch.count_nonzero(torch.cat([after[:, :4], after[:, 5:]], dim=1)) == 0


def test_bank_training_step_equals_separate_probe_steps():
    """One summed loss and one AdamW over the stack train each lens exactly as it would train alone."""
    torch.manual_seed(3)
    specs = _specs()
    probes = [Probe(s.input_dim, s.standardise, dropout=0.0) for s in specs]
    bank = LensBank.from_probes(specs, probes, dropout=0.0)
    x, labels = _inputs(32, seed=3), (torch.rand(32, len(specs)) < 0.4).float()
    rate = torch.full((len(specs),), 0.4)
    from aime.lenses.fit import balanced_bce

    optimizer = torch.optim.AdamW(bank.parameters(), lr=1e-2)
    optimizers = [torch.optim.AdamW(p.parameters(), lr=1e-2) for p in probes]
    for _ in range(3):
        optimizer.zero_grad()
        balanced_bce(bank(x), labels, rate).sum().backward()
        optimizer.step()
        for i, (spec, probe, opt) in enumerate(zip(specs, probes, optimizers, strict=True)):
            opt.zero_grad()
            balanced_bce(
                probe(x[spec.activation])[:, None], labels[:, i : i + 1], rate[i : i + 1]
            ).sum().backward()
            opt.step()
    with torch.no_grad():
        expected = torch.stack([p(x[s.activation]) for s, p in zip(specs, probes, strict=True)], dim=1)
        assert torch.allclose(bank(x), expected, atol=1e-5), (bank(x) - expected).abs().max()


def test_per_lens_stopping_keeps_each_lens_best_epoch():
    from aime.lenses.fit import PerLensStopping

    specs = [LensSpec("a", "h", 32), LensSpec("b", "z", 8)]
    bank = LensBank(specs).eval()
    x = _inputs(4)
    stopping = PerLensStopping(bank, patience=2, min_delta=0.0)

    def perturb() -> torch.Tensor:
        with torch.no_grad():
            for p in bank.parameters():
                p.add_(torch.randn_like(p))
            return bank(x)

    first = perturb()
    assert stopping.update(1, torch.tensor([1.0, 1.0])) == 2
    second = perturb()
    assert stopping.update(2, torch.tensor([0.5, 2.0])) == 2  # b: stale 1 of 2
    perturb()
    assert stopping.update(3, torch.tensor([0.7, 2.0])) == 1  # b stops
    stopping.restore()
    with torch.no_grad():
        restored = bank(x)
    assert torch.equal(restored[:, 0], second[:, 0]) and torch.equal(restored[:, 1], first[:, 1])
    assert stopping.best_epoch.tolist() == [2, 1]


def test_spans_cover_an_episode_once_in_windows_with_burn_in():
    from aime.lenses.encode import spans

    assert [(s.start, s.length, s.keep) for s in spans(0, 100, None)] == [(0, 100, 0)]
    assert [(s.start, s.length, s.keep) for s in spans(0, 100, 128)] == [(0, 100, 0)]
    for T, window in ((201, 128), (500, 128), (129, 128), (1000, 64)):
        windows = spans(3, T, window)
        kept = np.concatenate([np.arange(s.keep, s.start + s.length) for s in windows])
        assert kept.tolist() == list(range(T)), (T, window)
        assert all(s.length == window and s.start <= s.keep for s in windows)
        assert all(s.keep - s.start >= window // 4 for s in windows[1:])  # every later window warms up
