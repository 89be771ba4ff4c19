"""The held-out split: which episodes evaluation may use and training must never see.

An episode is held out when ``score(seed, episode_id) < eval_fraction``, where the score is a hash
of the pair mapped to [0, 1). The rule looks at one id at a time, so it gives the same answer in
every process, for every chunk file of an episode (chunks share the episode id), and whatever else
the store holds: episodes arriving later never move an episode across the split.

One exception keeps a small store evaluable: when the rule holds out nothing, the episode with the
lowest score is held out (and a warning says so). That choice depends on the whole set, so a trainer
must apply the split to the same listing it samples from, every time it re-lists the store.

A run's split is ``HeldOutSplit.of(cfg)`` (its seed and ``train.eval_fraction``), the one way it is
built: the trainer's sampler keeps ``training_files`` of every store listing, and periodic evaluation,
``aime eval`` and the lenses use ``held_out_files`` of the same listing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aime.replay.store import EpisodeFile

if TYPE_CHECKING:
    from aime.config import Config

log = logging.getLogger(__name__)
_warned: set[tuple[int, float, str]] = set()  # each fallback is said once per process


@dataclass(frozen=True)
class HeldOutSplit:
    seed: int = 0  # aime eval uses the run's seed, so a trainer with the same seed agrees
    eval_fraction: float = 0.1  # expected share of episodes held out

    @classmethod
    def of(cls, cfg: Config) -> HeldOutSplit:
        """The split of a run: its seed and ``train.eval_fraction``."""
        return cls(seed=cfg.seed, eval_fraction=cfg.train.eval_fraction)

    def __post_init__(self) -> None:
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")

    def score(self, episode_id: str) -> float:
        """A uniform number in [0, 1) fixed by (seed, episode_id)."""
        digest = hashlib.blake2b(f"{self.seed}\0{episode_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") / 2.0**64

    def held_out(self, episode_ids: Iterable[str]) -> set[str]:
        """The held-out ids among ``episode_ids``: at least one when there are two or more ids."""
        ids = sorted(set(episode_ids))
        chosen = {i for i in ids if self.score(i) < self.eval_fraction}
        if not chosen and len(ids) >= 2:
            fallback = min(ids, key=self.score)
            if (self.seed, self.eval_fraction, fallback) not in _warned:
                _warned.add((self.seed, self.eval_fraction, fallback))
                log.warning(
                    "eval split: no episode of %d falls under eval_fraction=%g; holding out %s alone",
                    len(ids),
                    self.eval_fraction,
                    fallback,
                )
            chosen = {fallback}
        return chosen

    def partition(self, episode_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(training ids, held-out ids), each sorted; disjoint, and together all the ids."""
        ids = sorted(set(episode_ids))
        held = self.held_out(ids)
        return [i for i in ids if i not in held], [i for i in ids if i in held]

    def training_files(self, files: Sequence[EpisodeFile]) -> list[EpisodeFile]:
        """The files a trainer may sample from (store order kept)."""
        held = self.held_out(f.meta.episode_id for f in files)
        return [f for f in files if f.meta.episode_id not in held]

    def held_out_files(self, files: Sequence[EpisodeFile]) -> list[EpisodeFile]:
        """The files evaluation uses (store order kept)."""
        held = self.held_out(f.meta.episode_id for f in files)
        return [f for f in files if f.meta.episode_id in held]
