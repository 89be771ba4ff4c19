"""Evaluation windows: evenly spread, deterministic, read exactly as stored."""

from __future__ import annotations

import numpy as np
import pytest

from aime.eval.windows import plan_windows, read_windows
from aime.replay.sampler import WindowSampler
from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes


def test_plan_is_deterministic_spread_and_within_episodes(store):
    files = ReplayStore(store).scan()
    plan = plan_windows(files, 7, 10)
    assert plan == plan_windows(list(files), 7, 10) and len(plan) == 10
    assert len({w.episode_id for w in plan}) == len(files)  # every episode contributes
    rows = {f.path: f.num_rows for f in files}
    assert all(0 <= w.start and w.start + 7 <= rows[w.path] for w in plan)
    # Asking for more windows than exist gives each valid window once.
    every = plan_windows(files[:1], 7, 1000)
    assert [w.start for w in every] == list(range(files[0].num_rows - 6))


def test_windows_read_as_the_training_sampler_reads_them(tmp_path):
    write_synthetic_episodes(tmp_path, 1, length=12, image_size=16)
    files = ReplayStore(tmp_path).scan()
    plan = plan_windows(files, 5, 3)
    batch = read_windows(ReplayStore(tmp_path), plan, 5)
    assert batch["obs"].shape == (3, 5, 3, 16, 16) and batch["obs"].dtype == np.uint8
    assert batch["action"].shape == (3, 5, 6) and batch["is_first"].shape == (3, 5)
    # The training sampler's only window of the whole episode is the episode as stored.
    whole = WindowSampler(str(tmp_path), 12).sample([0])
    for row, window in enumerate(plan):
        span = slice(window.start, window.start + 5)
        np.testing.assert_array_equal(batch["obs"][row], whole["pixels"][0, span])
        np.testing.assert_array_equal(batch["action"][row], whole["action"][0, span])
        np.testing.assert_array_equal(batch["is_first"][row], whole["is_first"][0, span])
    assert batch["is_first"][0, 0] and plan[0].start == 0


def test_episodes_too_short_for_a_window_say_what_to_do(tmp_path):
    write_synthetic_episodes(tmp_path, 2, length=5, image_size=8)
    with pytest.raises(ValueError, match="lower --context/--horizon"):
        plan_windows(ReplayStore(tmp_path).scan(), 6, 4)
