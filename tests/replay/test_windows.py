"""The window reader and evaluation plans: evenly spread, deterministic, read exactly as stored."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes
from aime.replay.windows import Window, model_inputs, plan_windows, read_windows


def test_plan_is_deterministic_spread_and_within_episodes(tmp_path):
    write_synthetic_episodes(tmp_path, 3, length=20, image_size=8)
    files = ReplayStore(tmp_path).scan()
    plan = plan_windows(files, 7, 10)
    assert plan == plan_windows(list(files), 7, 10) and len(plan) == 10
    assert len({w.episode_id for w in plan}) == len(files)  # every episode contributes
    rows = {f.path: f.num_rows for f in files}
    assert all(0 <= w.start and w.start + 7 <= rows[w.path] for w in plan)
    # Asking for more windows than exist gives each valid window once.
    every = plan_windows(files[:1], 7, 1000)
    assert [w.start for w in every] == list(range(files[0].num_rows - 6))


def test_windows_equal_the_stored_rows_across_row_groups(tmp_path):
    # Row groups of 4 rows: windows of 6 rows straddle two or three of them.
    write_synthetic_episodes(tmp_path, 2, length=23, image_size=16, row_group_steps=4)
    files = ReplayStore(tmp_path).scan()
    windows = [Window(files[1].path, 17, "b"), Window(files[0].path, 0, "a"), Window(files[0].path, 5, "a")]
    columns = ["pixels", "action", "is_first", "reward", "concept_a"]
    batch = read_windows(ReplayStore(tmp_path), windows, 6, columns)
    assert batch["pixels"].shape == (3, 6, 3, 16, 16) and batch["pixels"].dtype == np.uint8
    assert batch["action"].shape == (3, 6, 6) and batch["action"].dtype == np.float32
    assert batch["is_first"].shape == (3, 6) and batch["is_first"].dtype == np.bool_
    for row, window in enumerate(windows):
        stored = pq.read_table(window.path, columns=columns)  # the whole file, independently decoded
        span = slice(window.start, window.start + 6)
        pixels = np.stack([np.frombuffer(p, np.uint8) for p in stored.column("pixels").to_pylist()[span]])
        np.testing.assert_array_equal(batch["pixels"][row].reshape(6, -1), pixels)
        actions = np.array(stored.column("action").to_pylist()[span])
        np.testing.assert_array_equal(batch["action"][row], actions)
        for name in ("is_first", "reward", "concept_a"):
            np.testing.assert_array_equal(batch[name][row], stored.column(name).to_numpy()[span])
    assert batch["is_first"][1, 0] and not batch["is_first"][2].any()
    assert set(model_inputs(batch)) == {"obs", "action", "is_first"}


def test_episodes_too_short_for_a_window_say_what_to_do(tmp_path):
    write_synthetic_episodes(tmp_path, 2, length=5, image_size=8)
    with pytest.raises(ValueError, match="lower --context/--horizon"):
        plan_windows(ReplayStore(tmp_path).scan(), 6, 4)
