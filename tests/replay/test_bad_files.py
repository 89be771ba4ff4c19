"""One store with every kind of bad file a crash or a stray copy leaves: a truncated episode, a file
that is not Parquet, an empty file and a writer's leftover temporary file. Every reader goes on with
the good episodes and names what it skipped (eval.json, the activations manifest, replay stats);
importing into the store leaves them alone."""

from __future__ import annotations

import json
import shutil

import pytest

from aime.cli.main import main
from aime.replay import ReplayStore


@pytest.fixture
def planted(store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(store, root)
    good = sorted(root.glob("*.parquet"))
    truncated = root / "truncated-000001-000.parquet"
    truncated.write_bytes(good[0].read_bytes()[:-200])
    garbage = root / "garbage-000002-000.parquet"
    garbage.write_bytes(b"not a parquet file at all " * 40)
    empty = root / "empty-000003-000.parquet"
    empty.write_bytes(b"")
    (root / f".{good[1].name}.4f2a.tmp").write_bytes(good[1].read_bytes()[:300])  # a writer's leftover
    return root, len(good), sorted(str(p) for p in (truncated, garbage, empty))


def test_every_reader_skips_and_names_the_bad_files(
    planted, untrained_checkpoint, ray_local, tmp_path, capsys
):  # noqa: E501
    checkpoint = str(untrained_checkpoint)
    root, good, bad = planted
    assert len(ReplayStore(root).scan()) == good

    assert main(["replay", "stats", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"skipped       {len(bad)} unreadable files" in out and ".tmp" not in out

    out_dir = tmp_path / "eval"
    argv = ["eval", checkpoint, "--episodes", str(root), "--out", str(out_dir)]
    assert main([*argv, "--context", "3", "--horizon", "4", "--windows", "4", "--no-progress"]) == 0
    report = json.loads((out_dir / "eval.json").read_text())
    assert report["split"]["skipped_files"] == bad and report["split"]["store_episodes"] == good

    activations = tmp_path / "activations"
    argv = ["lenses", "extract", checkpoint, "--episodes", str(root), "--out", str(activations)]
    assert main(argv) == 0
    manifest = json.loads((activations / "activations.json").read_text())
    assert manifest["skipped_files"] == bad
    assert sum(len(s["episodes"]) for s in manifest["splits"].values()) == good

    # Importing into the store adds its episodes and touches none of the bad files.
    import numpy as np

    from aime.replay.importers.testing import dreamer_arrays, rlds_episode

    source = tmp_path / "npz"
    source.mkdir()
    for i in range(2):
        episode = rlds_episode(i, task="cheetah-run", steps=20, image_size=32)
        np.savez_compressed(source / f"ep{i}.npz", **dreamer_arrays(episode))
    assert main(["replay", "import", "npz", str(source), "--out", str(root), "--task", "cheetah-run"]) == 0
    store = ReplayStore(root)
    assert len(store.scan()) == good + 2 and store.skipped == bad
