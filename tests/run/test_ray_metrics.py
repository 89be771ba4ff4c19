"""aime's series reach the node's Prometheus endpoint with the run's numbers (a small real collection;
the training series are checked right after a real training run in tests/train/test_train.py), and
the Grafana dashboard charts exactly the series defined."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aime.actors.collect import collect
from aime.config import Config, load_config
from aime.run import ray_metrics as R
from aime.run.rundir import create_run_dir

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana" / "aime.json"


def test_a_collection_exports_frames_episodes_and_the_replay_size(tmp_path, ray_local, exported_metrics):
    overrides = ["collect.episodes=2", "collect.workers=1", "collect.envs_per_worker=2"]
    cfg = load_config(Config, "tiny", [f"results_dir={tmp_path}", *overrides, "env.max_episode_steps=10"])
    cfg, _ = create_run_dir(cfg)
    summary = collect(cfg, progress=False)
    assert summary.episodes == 2 and summary.steps == 20, summary
    run = {"run_id": cfg.run_id, "phase": "rollout"}

    def value(name: str, expected: float | None = None, **labels: str) -> float:
        until = bool if expected is None else (lambda total: total == expected)
        return exported_metrics(R.exported_name(name), until=until, **labels)

    value(R.ENV_EPISODES, 2, actor="0", **run)
    value(R.ENV_FRAMES, summary.steps, actor="0", **run)
    assert value(R.ENV_FRAMES_PER_SECOND, **run) > 0
    store = {"store": cfg.replay.root}
    value(R.REPLAY_EPISODES, 2, **store)
    value(R.REPLAY_STEPS, summary.steps + 2, **store)  # rows: each episode's final observation too
    value(R.REPLAY_BYTES, summary.bytes, **store)


def test_the_grafana_dashboard_charts_every_series_from_rays_prometheus_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"] == "${datasource}" for p in panels)
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    charted = {name for expr in exprs for name in re.findall(r"\bray_aime_\w+", expr)}
    assert charted == {R.exported_name(name) for name in R.SPECS}
