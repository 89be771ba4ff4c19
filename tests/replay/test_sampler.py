"""Window sampling: boundaries, determinism, capacity, new episodes, damaged files."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from aime.replay import NoEpisodesError, ReplayStore, WindowSampler
from aime.replay.synthetic import write_synthetic_episodes


@pytest.fixture
def store_root(tmp_path):
    # Different lengths, small row groups: windows straddle row groups and end at episode ends.
    for index, length in enumerate([9, 23, 40, 17]):
        write_synthetic_episodes(
            tmp_path, 1, length=length, image_size=8, start_index=index, row_group_steps=4
        )
    return str(tmp_path)


def test_windows_never_cross_an_episode_boundary(store_root):
    sampler = WindowSampler(store_root, seq_len=8, seed=0)
    batch = sampler.sample(np.arange(400))
    assert batch["pixels"].shape == (400, 8, 3, 8, 8) and batch["pixels"].dtype == np.uint8
    assert batch["action"].shape[:2] == (400, 8) and batch["concepts"].shape[:2] == (400, 8)
    steps = batch["step"]
    np.testing.assert_array_equal(np.diff(steps, axis=1), 1)  # contiguous steps of one episode
    assert not batch["is_first"][:, 1:].any(), "an episode start inside a window"
    assert not batch["is_last"][:, :-1].any(), "an episode end inside a window"
    lengths = {e.meta.episode_id: e.num_rows for e in sampler.episodes}
    assert len(set(batch["episode_key"].tolist())) == len(lengths) == 4  # every episode is drawn
    assert steps[:, -1].max() == 39  # the last window of the longest episode is reachable


def test_a_sampler_reads_only_the_columns_asked_for(store_root):
    full = WindowSampler(store_root, seq_len=5, seed=3).sample(np.arange(16))
    some = WindowSampler(store_root, seq_len=5, seed=3, columns=["pixels", "is_first", "concepts"])
    batch = some.sample(np.arange(16))
    assert set(batch) == {"pixels", "is_first", "concepts", "episode_key"}
    for key in batch:
        np.testing.assert_array_equal(batch[key], full[key])
    with pytest.raises(ValueError, match=r"columns \['obs'\]: choose from"):
        WindowSampler(store_root, seq_len=5, columns=["pixels", "obs"])


def test_same_seed_same_samples_other_seed_others(store_root):
    a = WindowSampler(store_root, seq_len=5, seed=3).sample(np.arange(32))
    b = WindowSampler(store_root, seq_len=5, seed=3).sample(np.arange(32))
    c = WindowSampler(store_root, seq_len=5, seed=4).sample(np.arange(32))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["step"], c["step"])
    # Order-free: a request id draws the same window alone or in a batch.
    single = WindowSampler(store_root, seq_len=5, seed=3).sample([7])
    np.testing.assert_array_equal(single["pixels"][0], a["pixels"][7])


def test_pixels_match_the_stored_frames(store_root):
    import pyarrow.parquet as pq

    sampler = WindowSampler(store_root, seq_len=6, seed=1)
    batch = sampler.sample(np.arange(20))
    paths = {e.meta.episode_id: e.path for e in sampler.episodes}
    from aime.replay.sampler import _episode_key

    by_key = {_episode_key(k): p for k, p in paths.items()}
    for row in range(20):
        table = pq.read_table(by_key[int(batch["episode_key"][row])])
        start = int(batch["step"][row, 0])
        rows = table.column("pixels").to_pylist()[start : start + 6]
        frames = np.stack([np.frombuffer(x, np.uint8) for x in rows])
        np.testing.assert_array_equal(batch["pixels"][row].reshape(6, -1), frames)


def test_new_episodes_become_visible_after_refresh(tmp_path):
    write_synthetic_episodes(tmp_path, 2, length=12, image_size=8)
    sampler = WindowSampler(str(tmp_path), seq_len=4, seed=0, refresh_seconds=0.0)
    assert len(set(sampler.sample(np.arange(64))["episode_key"].tolist())) == 2
    write_synthetic_episodes(tmp_path, 2, length=12, image_size=8, start_index=2)
    assert len(set(sampler.sample(np.arange(64))["episode_key"].tolist())) == 4


def test_capacity_keeps_the_newest_and_evict_deletes_the_oldest(tmp_path):
    write_synthetic_episodes(tmp_path, 5, length=10, image_size=8)
    sampler = WindowSampler(str(tmp_path), seq_len=4, seed=0, capacity_steps=30)
    sampler.refresh()
    assert [e.name for e in sampler.episodes] == sorted(e.name for e in ReplayStore(tmp_path).scan())[-3:]
    store = ReplayStore(tmp_path)
    removed = store.evict(capacity_steps=25)
    assert len(removed) == 3 and sum(e.num_rows for e in store.scan()) == 20
    assert all("000000" in p or "000001" in p or "000002" in p for p in removed)


def test_stray_temp_truncated_and_foreign_files_are_skipped_with_a_warning(tmp_path, caplog):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (path,) = write_synthetic_episodes(tmp_path, 1, length=12, image_size=8)
    write_synthetic_episodes(tmp_path, 1, length=12, image_size=8, start_index=1)
    (tmp_path / ".synthetic-000009.abcd.tmp").write_bytes(b"PAR1 half a file")
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(open(path, "rb").read()[:-100])
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "foreign.parquet")
    with caplog.at_level(logging.WARNING):
        sampler = WindowSampler(str(tmp_path), seq_len=4, seed=0)
        batch = sampler.sample(np.arange(16))
    assert len(sampler.episodes) == 2 and batch["pixels"].shape[0] == 16
    warned = caplog.text
    assert "truncated.parquet" in warned and "foreign.parquet" in warned and ".tmp" not in warned
    assert sorted(p.rsplit("/", 1)[-1] for p in sampler.store.skipped) == [
        "foreign.parquet",
        "truncated.parquet",
    ]


def test_an_episode_deleted_after_indexing_is_dropped_not_fatal(tmp_path):
    paths = write_synthetic_episodes(tmp_path, 3, length=12, image_size=8)
    sampler = WindowSampler(str(tmp_path), seq_len=4, seed=0)
    sampler.refresh()
    import os

    os.remove(paths[0])
    batch = sampler.sample(np.arange(64))
    assert len(set(batch["episode_key"].tolist())) == 2


def test_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(NoEpisodesError, match="no episode of >= 4 steps"):
        WindowSampler(str(tmp_path), seq_len=4).sample([0])


def test_far_apart_windows_of_one_episode_are_read_separately():
    from aime.replay.windows import _row_group_spans

    starts = np.arange(0, 520, 64)  # 8 row groups of 64 rows (+ the end offset)
    spans = _row_group_spans(starts, [(0, 0), (1, 10), (2, 400)], T=32)
    # Windows 0 and 1 share row group 0; window 2 (rows 400..431) needs only row group 6.
    assert [(first, last, [row for row, _ in rows]) for first, last, rows in spans] == [
        (0, 0, [0, 1]),
        (6, 6, [2]),
    ]


def test_training_never_samples_the_held_out_episodes(tmp_path):
    from aime.replay.sampler import _episode_key
    from aime.replay.split import HeldOutSplit

    write_synthetic_episodes(tmp_path, 10, length=12, image_size=8)
    split = HeldOutSplit(seed=0, eval_fraction=0.3)
    sampler = WindowSampler(str(tmp_path), seq_len=4, seed=0, episode_filter=split.training_files)
    keys = set(sampler.sample(np.arange(200))["episode_key"].tolist())
    held = split.held_out(e.meta.episode_id for e in ReplayStore(tmp_path).scan())
    assert held and not keys & {_episode_key(e) for e in held}
    assert len(keys) == 10 - len(held)


def _undeletable(victim: str):
    """The local filesystem, except that deleting ``victim`` fails (as a permission error or a
    flaky object store would make it)."""
    import pyarrow.fs as pafs

    local = pafs.LocalFileSystem()

    def delegate(name):
        return lambda self, *args: getattr(local, name)(*args)

    def delete_file(self, path):
        if path == victim:
            raise OSError(f"permission denied: {path}")
        local.delete_file(path)

    names = [n for n in dir(pafs.FileSystemHandler) if not n.startswith("_") and n != "delete_file"]
    methods = {name: delegate(name) for name in names}
    methods |= {
        "delete_file": delete_file,
        "get_type_name": lambda self: "undeletable",
        "get_file_info_selector": lambda self, selector: local.get_file_info(selector),
        "delete_root_dir_contents": lambda self: None,
    }
    return pafs.PyFileSystem(type("Undeletable", (pafs.FileSystemHandler,), methods)())


def test_a_failed_eviction_is_reported_and_the_next_oldest_goes_instead(tmp_path, caplog):
    import logging

    write_synthetic_episodes(tmp_path, 5, length=10, image_size=8)
    store = ReplayStore(tmp_path)
    oldest = store.scan()[0].path
    store.fs = _undeletable(oldest)
    with caplog.at_level(logging.WARNING):
        removed = store.evict(capacity_steps=25)
    assert oldest not in removed and len(removed) == 3, removed  # not counted as evicted
    assert f"could not evict {oldest}" in caplog.text
    assert sum(e.num_rows for e in ReplayStore(tmp_path).scan()) == 20  # capacity still met
