"""The replay store (Parquet episodes), its sampler, and its Ray Data stream. See README.md."""

from aime.replay.buffer import ReplayBuffer
from aime.replay.dataset import executor_apart
from aime.replay.sampler import NoEpisodesError, WindowSampler
from aime.replay.stats import ReplayStats, replay_stats
from aime.replay.store import EpisodeFile, ReplayStore

__all__ = [
    "EpisodeFile",
    "NoEpisodesError",
    "ReplayBuffer",
    "ReplayStats",
    "ReplayStore",
    "WindowSampler",
    "executor_apart",
    "replay_stats",
]
