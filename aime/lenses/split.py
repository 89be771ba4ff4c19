"""Which episodes a lens trains, stops and is tested on: whole episodes, never rows of one episode in
two splits (neighbouring steps are near copies, so a row split would test on the training data).

    episode ids --HeldOutSplit.of(cfg)--> (world-model training ids, held-out ids)
    held-out ids                                    --> test (the world model never saw them either)
    world-model training ids, ranked by a seeded hash --> validation, extra test, train

The held-out episodes alone are usually too few to test on (eval_fraction is 0.1), so test is topped
up to ``test_fraction`` of the episodes from the rest; lenses then test on episodes they never saw,
part of which the world model never saw. With three or more episodes every split gets one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aime.replay.split import HeldOutSplit


@dataclass(frozen=True)
class LensSplit:
    validation_fraction: float = 0.15
    test_fraction: float = 0.2  # held-out episodes included
    seed: int = 0

    def assign(self, episode_ids: Iterable[str], held_out: HeldOutSplit) -> dict[str, list[str]]:
        """{"train", "validation", "test"}: sorted, disjoint, together all of ``episode_ids``."""
        ids = sorted(set(episode_ids))
        rest, held = held_out.partition(ids)
        ranker = HeldOutSplit(seed=self.seed, eval_fraction=0.5)  # its hash, nothing else
        rest = sorted(rest, key=lambda i: (ranker.score(f"lenses\0{i}"), i))
        n = len(ids)
        want_val = max(1, round(self.validation_fraction * n)) if n >= 3 else 0
        want_test = max(0, max(1, round(self.test_fraction * n)) - len(held)) if n >= 2 else 0
        want_val = min(want_val, max(0, len(rest) - 1))
        want_test = min(want_test, max(0, len(rest) - want_val - 1))
        validation, extra = rest[:want_val], rest[want_val : want_val + want_test]
        train = rest[want_val + want_test :]
        return {"train": sorted(train), "validation": sorted(validation), "test": sorted(held + extra)}
