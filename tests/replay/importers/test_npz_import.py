"""Dreamer npz episodes -> replay store: the one-row shift into RLDS alignment, splits, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aime.replay import ReplayStore
from aime.replay.importers import NpzImporter, WriteSettings, import_file, run_import
from aime.replay.importers.testing import dreamer_arrays, rlds_episode

STEPS, SIZE, TASK = 9, 8, "cheetah-run"


def episode(index: int) -> dict[str, np.ndarray]:
    return rlds_episode(index, task=TASK, steps=STEPS, image_size=SIZE)


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("npz")
    np.savez_compressed(root / "ep0.npz", **dreamer_arrays(episode(0)))
    two = [dreamer_arrays(episode(1)), dreamer_arrays(episode(2))]
    (root / "sub").mkdir()
    np.savez(root / "sub" / "two.npz", **{key: np.concatenate([two[0][key], two[1][key]]) for key in two[0]})
    np.savez(root / "wrong_action.npz", **dict(dreamer_arrays(episode(3)), action=np.zeros((STEPS, 2))))
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return root


def test_actions_and_rewards_shift_one_row_earlier(npz_dir, tmp_path):
    importer = NpzImporter(str(npz_dir), TASK)
    file = next(f for f in importer.list_files() if f.rel == "ep0.npz")
    report = import_file(importer, file, WriteSettings(out=str(tmp_path)))
    assert (report.episodes, report.rows, report.steps, report.skipped) == (1, STEPS, STEPS - 1, [])
    (entry,) = ReplayStore(str(tmp_path)).scan()
    table = ReplayStore(str(tmp_path)).open(entry.path).read()
    rlds = episode(0)
    action = np.stack(table.column("action").to_numpy(zero_copy_only=False))
    # Dreamer's action[t + 1] led from image[t] to image[t + 1]: the store's action at row t.
    np.testing.assert_allclose(action, rlds["action"].astype(np.float32), atol=1e-6)
    np.testing.assert_allclose(
        table.column("reward").to_numpy(), rlds["reward"].astype(np.float32), atol=1e-6
    )
    assert not action[-1].any() and table.column("reward").to_numpy()[-1] == 0.0
    assert entry.meta.source == "npz" and entry.meta.extra == {"source_file": "ep0.npz", "record": 0}
    assert entry.meta.state_dim == 17 and len(entry.meta.concepts) == 5  # cheetah: state keys present


def test_a_directory_imports_with_splits_and_skips(ray_local, npz_dir, tmp_path):
    summary = run_import(NpzImporter(str(npz_dir), TASK), WriteSettings(out=str(tmp_path)), progress=False)
    assert (summary.files, summary.episodes, summary.rows) == (4, 3, 3 * STEPS)
    reasons = {s.file: s.reason for s in summary.skipped}
    assert reasons["wrong_action.npz"].startswith("wrong action length: 2 per step")
    assert reasons["corrupt.npz"].startswith("unreadable npz")
    episodes = ReplayStore(str(tmp_path)).scan()
    split = sorted(e.meta.extra["record"] for e in episodes if e.meta.extra["source_file"] == "sub/two.npz")
    assert split == [0, 1]  # the file held two episodes (is_first inside it)


def test_an_import_killed_midway_and_run_again_has_no_duplicates_and_no_partial_files(ray_local, tmp_path):
    """SIGKILL the importing driver (a job on the session's Ray) once a few files are done, import
    again: every episode exactly once, every file whole, every source file marked."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import pyarrow.parquet as pq

    from aime.cli.main import main

    count = 16
    source, out = tmp_path / "npz", tmp_path / "replay"
    source.mkdir()
    for i in range(count):
        long = rlds_episode(i, task=TASK, steps=200, image_size=32)
        np.savez_compressed(source / f"ep{i:02d}.npz", **dreamer_arrays(long))
    command = [sys.executable, "-m", "aime.cli.main", "replay", "import", "npz", str(source)]
    command += ["--out", str(out), "--task", "cheetah-run", "--workers", "1", "--no-progress"]
    address = ray_local.get_runtime_context().gcs_address
    env = dict(os.environ, RAY_ADDRESS=address)
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("_imported/**/*.json"))) < 3:
            assert driver.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline, "no file was imported within 120 s"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    assert len(list(out.glob("_imported/**/*.json"))) < count, "killed too late to test anything"
    assert main(["replay", "import", "npz", str(source), "--out", str(out), "--task", "cheetah-run"]) == 0
    store = ReplayStore(out)
    files = store.scan()
    assert store.skipped == [] and all(pq.read_metadata(f.path).num_rows == 200 for f in files)
    ids = [f.meta.episode_id for f in files]
    assert len(ids) == len(set(ids)) == count
    assert len(list(out.glob("_imported/**/*.json"))) == count
