"""``aime replay stats`` over a store."""

from __future__ import annotations

import json
from pathlib import Path

from aime.cli.main import main


def test_replay_stats_cli(tmp_path, capsys):
    from aime.replay.synthetic import write_synthetic_episodes

    write_synthetic_episodes(tmp_path, 3, length=20, image_size=16)
    assert main(["replay", "stats", str(tmp_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (
        stats["episodes"] == 3
        and stats["steps"] == 60
        and stats["bytes"] == sum(p.stat().st_size for p in Path(tmp_path).glob("*.parquet"))
    )


def test_a_filesystem_uri_root_works_like_a_directory(tmp_path):
    from aime.replay import WindowSampler
    from aime.replay.synthetic import write_synthetic_episodes

    uri = f"file://{tmp_path}/store"
    write_synthetic_episodes(uri, 2, length=10, image_size=8)
    assert len(list((tmp_path / "store").glob("*.parquet"))) == 2
    batch = WindowSampler(uri, seq_len=4, seed=0).sample(range(8))
    assert batch["pixels"].shape == (8, 4, 3, 8, 8)
