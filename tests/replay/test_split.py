"""The held-out split: deterministic, disjoint from training, per-episode, never empty."""

from __future__ import annotations

import pytest

from aime.replay.split import HeldOutSplit
from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes

IDS = [f"run-{i:06d}" for i in range(400)]


def test_the_split_is_a_pure_function_of_seed_and_episode_id():
    split = HeldOutSplit(seed=3, eval_fraction=0.1)
    train, held = split.partition(IDS)
    assert (train, held) == HeldOutSplit(seed=3, eval_fraction=0.1).partition(reversed(IDS))
    assert not set(train) & set(held) and sorted(train + held) == sorted(IDS)
    assert 20 <= len(held) <= 60  # ~10% of 400
    # An episode's side never depends on the other episodes (growing or evicting the store).
    assert split.held_out(IDS[:200]) == set(held) & set(IDS[:200])
    assert HeldOutSplit(seed=4, eval_fraction=0.1).held_out(IDS) != set(held)


def test_a_small_store_still_holds_out_one_episode_and_trains_on_the_rest(tmp_path):
    write_synthetic_episodes(tmp_path, 3, length=6, image_size=8)
    files = ReplayStore(tmp_path).scan()
    split = HeldOutSplit(seed=0, eval_fraction=0.01)
    held, train = split.held_out_files(files), split.training_files(files)
    assert len(held) == 1 and len(train) == 2
    assert {f.meta.episode_id for f in held}.isdisjoint(f.meta.episode_id for f in train)
    # One episode alone is held out only when the rule itself picks it; the fallback needs two.
    rule = split.score(IDS[0]) < split.eval_fraction
    assert split.held_out([IDS[0]]) == ({IDS[0]} if rule else set())


def test_eval_fraction_must_be_a_proper_fraction():
    with pytest.raises(ValueError, match="eval_fraction"):
        HeldOutSplit(eval_fraction=1.0)
