"""A run directory on shared storage (issue 15): ``aime run``, ``aime train --resume`` and ``aime eval``
against a real S3-compatible server on 127.0.0.1. The store, checkpoints and run files are there;
nothing stays on the local disk."""

import json

from aime import checkpoints
from aime.cli.main import main
from aime.storage.mirror import finish, staged_uri


def _files(s3_server, *parts: str) -> dict[str, int]:
    return s3_server.files(*parts)


def _read_json(s3_server, *parts: str):
    return json.loads(s3_server.read(*parts))


def test_run_resume_and_eval_on_s3_keep_nothing_local(s3_server, ray_local, tmp_path, monkeypatch):
    staging = tmp_path / "staging"
    monkeypatch.setenv("AIME_STAGING_DIR", str(staging))
    monkeypatch.chdir(tmp_path)
    runs = s3_server.uri("runs")
    steps = ("train.num_workers=1", "train.checkpoint_every=2", "train.eval_windows=4")
    code = main(
        ["run", "--config", "tiny", "--no-progress", f"results_dir={runs}", "run_id=shared", "train.steps=4"]
        + list(steps)
    )
    assert code == 0
    files = _files(s3_server, "runs", "shared")
    episodes = [f for f in files if f.startswith("replay/") and f.endswith(".parquet")]
    assert len(episodes) == 4, sorted(files)  # collect wrote the store there (tiny: 4 episodes)
    for name in ("config.yaml", "metrics.jsonl", "train.json", "summary.json", "eval.json"):
        assert files.get(name, 0) > 0, (name, sorted(files))
    step4 = "checkpoints/train/step00000004/"
    assert {step4 + "meta.json", step4 + "model.safetensors"} <= set(files)
    assert any(f.startswith(step4 + "deepspeed/") for f in files)  # the resumable state too
    summary = _read_json(s3_server, "runs", "shared", "summary.json")
    assert summary["train"]["checkpoint"].startswith(runs + "/shared/checkpoints/train/step")
    assert not list(tmp_path.glob("results*")) and not any(staging.iterdir())  # nothing local

    assert main(["train", "--resume", f"{runs}/shared", "--no-progress", "train.steps=6"]) == 0
    files = _files(s3_server, "runs", "shared")
    assert "checkpoints/train/step00000006/meta.json" in files
    lines = _read_lines(s3_server, "runs", "shared", "metrics.jsonl")
    steps_logged = [r["step"] for r in lines if "train/total" in r]
    assert steps_logged[-2:] == [5, 6] and 4 in steps_logged  # resumed after step 4, history kept

    assert main(["eval", f"{runs}/shared", "--no-progress", "--windows", "4"]) == 0
    assert _read_json(s3_server, "runs", "shared", "eval.json")["step"] == 6
    # What a Serve replica on another node does: load the chosen checkpoint by its URI.
    loaded = checkpoints.load(f"{runs}/shared")
    assert loaded.step == 6 and staged_uri(loaded.path) == f"{runs}/shared/checkpoints/train/step00000006"
    assert not (staged_uri(loaded.path) and (loaded.path / "deepspeed").exists())  # model files only
    finish(checkpoints.run_dir_of(loaded.path))
    assert not list(tmp_path.glob("results*")) and not any(staging.iterdir())


def _read_lines(s3_server, *parts: str) -> list[dict]:
    return [json.loads(line) for line in s3_server.read(*parts).decode().splitlines() if line.strip()]
