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
