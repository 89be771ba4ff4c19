"""The frame cache: the same windows as the Parquet reader, served without the store once filled,
shared through the directory, bounded in size, whole entries only, and picklable for sampler actors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from aime.config import Config, ConfigError, load_config
from aime.replay.frame_cache import FrameCache
from aime.replay.sampler import WINDOW_COLUMNS, WindowSampler
from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes

T = 6


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    write_synthetic_episodes(root, 4, length=20, image_size=16, row_group_steps=4)
    return root


def _equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_windows_through_the_cache_equal_the_parquet_reader_for_every_column(store, tmp_path):
    plain = WindowSampler(str(store), T, seed=1)
    cached = WindowSampler(str(store), T, seed=1, frame_cache=FrameCache(tmp_path / "cache"))
    ids = np.arange(40)
    _equal(plain.sample(ids), cached.sample(ids))  # first use fills the cache
    _equal(plain.sample(ids), cached.sample(ids))  # later reads come from it
    assert set(cached.sample(ids)) == {*WINDOW_COLUMNS, "episode_key"}
    entries = list((tmp_path / "cache").iterdir())  # one file per episode, every column in it
    assert len(entries) == 4 and all(e.suffix == ".frames" for e in entries)


def test_a_filled_cache_serves_windows_without_the_store_and_is_shared_through_its_directory(store, tmp_path):
    columns = ("pixels", "action", "is_first")
    first = FrameCache(tmp_path / "cache")
    sampler = WindowSampler(str(store), T, seed=2, columns=columns, frame_cache=first)
    sampler.refresh(force=True)
    size = first.fill(sampler.store, sampler.episodes, columns)
    assert size >= 4 * 20 * 3 * 16 * 16  # the raw pixels of every episode, at least
    expected = sampler.sample(np.arange(24))
    for path in store.rglob("*.parquet"):  # the Parquet files are gone ...
        path.unlink()
    assert not ReplayStore(str(store)).list_names()
    # ... and another process's cache over the same directory (a second sampler actor) still reads
    # every window: nothing is decoded again.
    other = WindowSampler(str(store), T, seed=2, columns=columns, frame_cache=FrameCache(tmp_path / "cache"))
    other._episodes, other._cum_windows = sampler._episodes, sampler._cum_windows
    other._refreshed_at = float("inf")  # keep the index listed before the files went
    _equal(expected, other.sample(np.arange(24)))


def test_past_its_capacity_the_oldest_entries_leave_and_windows_stay_right(store, tmp_path):
    episode_bytes = 20 * 3 * 16 * 16
    cache = FrameCache(tmp_path / "cache", capacity_gb=2.5 * episode_bytes / 2**30)
    plain = WindowSampler(str(store), T, seed=3, columns=("pixels",))
    cached = WindowSampler(str(store), T, seed=3, columns=("pixels",), frame_cache=cache)
    for start in range(0, 80, 8):
        _equal(plain.sample(np.arange(start, start + 8)), cached.sample(np.arange(start, start + 8)))
    held = sum(f.stat().st_size for f in (tmp_path / "cache").iterdir())
    assert 0 < held <= 2.5 * episode_bytes + 4 * 512  # (each entry has a small header)
    assert len(list((tmp_path / "cache").iterdir())) < 4


def test_a_cache_smaller_than_one_episode_still_serves_every_window(store, tmp_path):
    cache = FrameCache(tmp_path / "cache", capacity_gb=100 / 2**30)  # 100 bytes: every entry is too big
    plain = WindowSampler(str(store), T, seed=5, columns=("pixels",))
    cached = WindowSampler(str(store), T, seed=5, columns=("pixels",), frame_cache=cache)
    for start in range(0, 48, 8):
        _equal(plain.sample(np.arange(start, start + 8)), cached.sample(np.arange(start, start + 8)))
    assert len(list((tmp_path / "cache").glob("*.frames"))) <= 1  # only the one just written stays


def test_a_damaged_entry_is_decoded_again_and_an_old_leftover_temporary_is_removed(store, tmp_path):
    columns = ("pixels", "action")
    plain = WindowSampler(str(store), T, seed=4, columns=columns).sample(np.arange(16))
    WindowSampler(str(store), T, seed=4, columns=columns, frame_cache=FrameCache(tmp_path / "cache")).sample(
        np.arange(16)
    )
    assert not list((tmp_path / "cache").glob("*.tmp"))  # written, then renamed into place
    entries = sorted((tmp_path / "cache").glob("*.frames"))
    entries[0].write_bytes(entries[0].read_bytes()[:1000])  # truncated (a crash on another node)
    entries[1].write_bytes(b"")  # empty (a full disk)
    leftover = tmp_path / "cache" / ".deadbeef.tmp"  # a writer killed mid-write, long ago
    leftover.write_bytes(b"half a file")
    os.utime(leftover, (0, 0))
    fresh = FrameCache(tmp_path / "cache")
    _equal(
        plain, WindowSampler(str(store), T, seed=4, columns=columns, frame_cache=fresh).sample(np.arange(16))
    )
    assert all(len(e.read_bytes()) > 1000 for e in entries)  # both rewritten whole
    fresh.capacity_bytes = 1  # the next write evicts: the leftover goes too
    WindowSampler(str(store), T, seed=9, columns=("reward",), frame_cache=fresh).sample(np.arange(4))
    assert not leftover.exists()


def test_columns_added_by_two_processes_to_one_entry_are_all_kept(store, tmp_path):
    a, b = FrameCache(tmp_path / "cache"), FrameCache(tmp_path / "cache")  # two sampler actors
    sampler = WindowSampler(str(store), T)
    sampler.refresh(force=True)
    episode = sampler.episodes[0]
    identity = f"{episode.meta.episode_id}\0{episode.size_bytes}"
    a.columns(sampler.store, episode.path, identity, ["pixels"])
    b.columns(sampler.store, episode.path, identity, ["pixels", "action"])  # b adds action
    got = a.columns(
        sampler.store, episode.path, identity, ["is_first"]
    )  # a, holding only pixels, adds is_first
    (entry,) = (tmp_path / "cache").glob("*.frames")
    from aime.replay.frame_cache import _views

    assert set(_views(np.memmap(entry, mode="r", dtype=np.uint8))) == {"pixels", "action", "is_first"}
    assert got["is_first"].shape == (20,) and got["is_first"][0]


def test_an_episode_file_replaced_at_the_same_path_is_not_read_from_the_cache(tmp_path):
    root = tmp_path / "store"
    write_synthetic_episodes(root, 1, length=20, image_size=16, seed=1)
    cache = FrameCache(tmp_path / "cache")
    before = WindowSampler(str(root), T, columns=("pixels",), frame_cache=cache).sample(np.arange(4))
    for path in root.rglob("*.parquet"):
        path.unlink()
    write_synthetic_episodes(root, 1, length=24, image_size=16, seed=2)  # same name, other frames
    after = WindowSampler(str(root), T, columns=("pixels",), frame_cache=cache).sample(np.arange(4))
    _equal(WindowSampler(str(root), T, columns=("pixels",)).sample(np.arange(4)), after)
    assert not np.array_equal(before["pixels"], after["pixels"])


def test_the_cache_travels_to_sampler_actors_without_its_open_maps(store, tmp_path):
    cache = FrameCache(tmp_path / "cache", capacity_gb=2.0)
    WindowSampler(str(store), T, columns=("pixels",), frame_cache=cache).sample(np.arange(8))
    assert cache._maps
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.directory == cache.directory and copy.capacity_bytes == 2 * 2**30 and not copy._maps


def test_the_cache_is_configured_by_replay_keys_and_a_bad_size_names_its_key(tmp_path):
    cfg = load_config(Config, "tiny", [f"replay.frame_cache={tmp_path}", "replay.frame_cache_gb=2"])
    assert (cfg.replay.frame_cache, cfg.replay.frame_cache_gb) == (str(tmp_path), 2.0)
    assert load_config(Config, "tiny").replay.frame_cache is None  # off unless asked for
    with pytest.raises(ConfigError, match="replay.frame_cache_gb: must be > 0"):
        load_config(Config, "tiny", ["replay.frame_cache_gb=0"])
    with pytest.raises(ValueError, match="capacity must be > 0"):
        FrameCache(tmp_path, capacity_gb=0)
