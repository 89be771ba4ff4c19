"""Fixed-length windows sampled uniformly from the replay store, never crossing an episode file.

Memory holds the episode index (a few numbers per file), never frames; each window read decodes only
the row groups it overlaps, so a batch costs the same whether the store holds 100 episodes or 100,000.
Sampling is a pure function of ``(seed, request id, index)``: the same seed over the same store gives
the same windows, in any process, in any order of calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa

from aime.replay.frame_cache import FrameCache
from aime.replay.schema import CONCEPT_PREFIX
from aime.replay.store import EpisodeFile, ReplayStore, within_capacity
from aime.replay.windows import Window, read_windows

log = logging.getLogger(__name__)
R = TypeVar("R")

# Columns read per window besides pixels and concepts (their stored dtypes are these).
STEP_COLUMNS = {
    "reward": np.float32,
    "discount": np.float32,
    "is_first": np.bool_,
    "is_last": np.bool_,
    "is_terminal": np.bool_,
    "step": np.int32,
    "policy_version": np.int32,
}
VECTOR_COLUMNS = ("action", "state")
# What a window can carry; "concepts" stands for every concept column, stacked.
WINDOW_COLUMNS = ("pixels", *VECTOR_COLUMNS, *STEP_COLUMNS, "concepts")


class NoEpisodesError(RuntimeError):
    pass


class WindowSampler:
    """Samples ``(N, T)`` windows: ``pixels`` uint8 (N, T, C, H, W), ``action`` (N, T, A), ...

    ``concepts`` is bool (N, T, K) in the order of ``concept_names``; ``episode_key`` (N,) int64 is a
    stable hash of each window's episode id; ``policy_version`` (N, T) says which weights acted.
    ``columns`` (of WINDOW_COLUMNS; default all) is what each window carries besides ``episode_key``:
    a reader pays per column read, so a trainer asks for what the model takes. With a ``frame_cache``
    each episode is decoded once onto local disk and windows copy their rows from there.
    """

    def __init__(
        self,
        root: str,
        seq_len: int,
        *,
        seed: int = 0,
        capacity_steps: int | None = None,
        refresh_seconds: float = 5.0,
        max_retries: int = 3,
        episode_filter: Callable[[list[EpisodeFile]], list[EpisodeFile]] | None = None,
        columns: Sequence[str] | None = None,
        frame_cache: FrameCache | None = None,
    ):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        unknown = sorted(set(columns or ()) - set(WINDOW_COLUMNS))
        if unknown or (columns is not None and not columns):
            raise ValueError(f"columns {unknown or '(none)'}: choose from {list(WINDOW_COLUMNS)}")
        self.columns = tuple(columns) if columns else WINDOW_COLUMNS
        self.store = ReplayStore(root)
        self.seq_len = seq_len
        self.seed = seed
        self.capacity_steps = capacity_steps
        self.refresh_seconds = refresh_seconds
        self.max_retries = max_retries
        # e.g. HeldOutSplit.of(cfg).training_files: keeps held-out episodes out of training
        self.episode_filter = episode_filter
        self.frame_cache = frame_cache
        self._refreshed_at = -np.inf
        self._episodes: list[EpisodeFile] = []
        self._cum_windows = np.zeros(0, np.int64)
        self.concept_names: tuple[str, ...] = ()

    # ---- index -----------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> int:
        """Re-list the store at most every ``refresh_seconds``; returns the number of usable episodes."""
        now = time.monotonic()
        if not force and now - self._refreshed_at < self.refresh_seconds:
            return len(self._episodes)
        self._refreshed_at = now
        episodes = self.store.scan()
        if self.episode_filter is not None:
            episodes = self.episode_filter(episodes)
        if self.capacity_steps is not None:
            episodes = within_capacity(episodes, self.capacity_steps)
        episodes = [e for e in episodes if e.num_rows >= self.seq_len]
        if episodes:
            first = episodes[0].meta
            same = [e for e in episodes if _compatible(e, episodes[0])]
            if len(same) < len(episodes):
                log.warning(
                    "replay: %d episodes differ in shape/concepts from %s and are not sampled",
                    len(episodes) - len(same),
                    episodes[0].name,
                )
            episodes = same
            self.concept_names = first.concepts
        self._episodes = episodes
        windows = np.array([e.num_rows - self.seq_len + 1 for e in episodes], np.int64)
        self._cum_windows = np.cumsum(windows)
        return len(episodes)

    @property
    def episodes(self) -> list[EpisodeFile]:
        return list(self._episodes)

    @property
    def num_windows(self) -> int:
        return int(self._cum_windows[-1]) if len(self._cum_windows) else 0

    # ---- sampling --------------------------------------------------------------------------
    def sample(self, request_ids: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        """One window per request id, chosen by ``rng(seed, id)``: what ``read`` gives for ``plan``."""
        return self._retrying(request_ids, self.read)

    def plan(self, request_ids: np.ndarray | list[int]) -> list[Window]:
        """The windows ``sample`` reads for these ids, without reading them; with a frame cache their
        episodes are decoded into it first, so a reader of the plan only copies rows."""
        return self._retrying(request_ids, self._warm)

    def read(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        """The columns of planned windows (N = len(windows)); raises OSError / ArrowException for a
        file that went away since (``sample`` then draws again)."""
        with_concepts = "concepts" in self.columns
        if with_concepts and self._refreshed_at == -np.inf:
            self.refresh()  # the store's concept names: a reader of plans may never have listed it
        arrays = read_windows(self.store, windows, self.seq_len, self._read_columns(), cache=self.frame_cache)
        out = {name: arrays[name] for name in self.columns if name != "concepts"}
        if with_concepts:
            concept_columns = [CONCEPT_PREFIX + c for c in self.concept_names]
            concepts = [arrays[c] for c in concept_columns]
            empty = np.empty((len(windows), self.seq_len, 0), bool)
            out["concepts"] = np.stack(concepts, axis=-1) if concepts else empty  # (N, T, K)
        out["episode_key"] = np.array([_episode_key(w.episode_id) for w in windows], np.int64)
        return out

    def _retrying(self, request_ids: np.ndarray | list[int], use: Callable[[list[Window]], R]) -> R:
        self.refresh()
        ids = np.asarray(request_ids, dtype=np.int64)
        for attempt in range(self.max_retries + 1):
            windows = self._plan(ids, attempt)
            try:
                return use(windows)
            except (OSError, pa.ArrowException) as error:
                # An episode evicted or damaged after the index was built: drop it and draw again.
                log.warning("replay: read failed (%s); refreshing the index", error)
                self.refresh(force=True)
        raise RuntimeError(f"replay: reads kept failing after {self.max_retries} index refreshes")

    def _read_columns(self) -> list[str]:
        stored = [name for name in self.columns if name != "concepts"]
        concepts = [CONCEPT_PREFIX + c for c in self.concept_names] if "concepts" in self.columns else []
        return [*stored, *concepts]

    def _warm(self, windows: list[Window]) -> list[Window]:
        if self.frame_cache is not None:
            names = self._read_columns()
            for window in {w.path: w for w in windows}.values():  # one per file
                self.frame_cache.columns(self.store, window.path, window.identity, names)
        return windows

    def _plan(self, ids: np.ndarray, attempt: int) -> list[Window]:
        if self.num_windows == 0:
            raise NoEpisodesError(
                f"no episode of >= {self.seq_len} steps in {self.store.root}"
                f" (skipped files: {self.store.skipped or 'none'})"
            )
        windows = []
        for request_id in ids:
            episode, start = self._pick(int(request_id), attempt)
            entry = self._episodes[episode]
            windows.append(Window(entry.path, start, entry.meta.episode_id, stamp=str(entry.size_bytes)))
        return windows

    def _pick(self, request_id: int, attempt: int) -> tuple[int, int]:
        rng = np.random.default_rng([self.seed, request_id, attempt])
        flat = int(rng.integers(self.num_windows))
        episode = int(np.searchsorted(self._cum_windows, flat, side="right"))
        start = flat - (int(self._cum_windows[episode - 1]) if episode else 0)
        return episode, start


def _episode_key(episode_id: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(episode_id.encode(), digest_size=8).digest(), "little") >> 1


def _compatible(a: EpisodeFile, b: EpisodeFile) -> bool:
    x, y = a.meta, b.meta
    return (x.pixel_shape, x.action_dim, x.state_dim, x.concepts) == (
        y.pixel_shape,
        y.action_dim,
        y.state_dim,
        y.concepts,
    )
