"""A run directory on shared storage (issue 15): ``aime run``, ``aime train --resume``, ``aime eval``,
the lens commands and the replay tools against a real S3-compatible server on 127.0.0.1. The store,
checkpoints, run files, activations and lens pack are there; nothing stays on the local disk."""

import json
import shutil

import numpy as np

from aime import checkpoints
from aime.cli.main import main
from aime.replay.importers.testing import dreamer_arrays, rlds_episode
from aime.storage.mirror import finish, staged_uri, start_staging


def _files(s3_server, *parts: str) -> dict[str, int]:
    return s3_server.files(*parts)


def _read_json(s3_server, *parts: str):
    return json.loads(s3_server.read(*parts))


def test_run_resume_and_eval_on_s3_keep_nothing_local(s3_server, ray_local, tmp_path, monkeypatch, capsys):
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

    # Evaluated while (as far as eval can tell) the run still trains on this node: its working copy
    # holds lines not pushed yet. Eval reads a copy of its own and sends back only its report.
    live = start_staging(f"{runs}/shared")
    (live / "metrics.jsonl").write_text('{"step": 7, "unpushed": true}\n')
    metrics_before = s3_server.read("runs", "shared", "metrics.jsonl")
    assert main(["eval", f"{runs}/shared", "--no-progress", "--windows", "4"]) == 0
    assert _read_json(s3_server, "runs", "shared", "eval.json")["step"] == 6
    assert "psnr_horizon.png" in _files(s3_server, "runs", "shared")
    assert (live / "metrics.jsonl").read_text() == '{"step": 7, "unpushed": true}\n'
    assert sorted(p.name for p in live.iterdir()) == [".aime-remote", "metrics.jsonl"]  # nothing pulled in
    assert s3_server.read("runs", "shared", "metrics.jsonl") == metrics_before
    shutil.rmtree(live)
    # A report sent elsewhere in the bucket: written there, nothing local (not a folder named "s3:").
    elsewhere = ["--out", f"{runs}/reports"]
    assert main(["eval", f"{runs}/shared", "--no-progress", "--windows", "4", *elsewhere]) == 0
    assert {"eval.json", "psnr_horizon.png"} == set(_files(s3_server, "runs", "reports"))
    assert not list(tmp_path.glob("s3*")) and not any(staging.iterdir())
    # What a Serve replica on another node does: load the chosen checkpoint by its URI.
    loaded = checkpoints.load(f"{runs}/shared")
    assert loaded.step == 6 and staged_uri(loaded.path) == f"{runs}/shared/checkpoints/train/step00000006"
    assert not (staged_uri(loaded.path) and (loaded.path / "deepspeed").exists())  # model files only
    finish(checkpoints.run_dir_of(loaded.path))
    assert not list(tmp_path.glob("results*")) and not any(staging.iterdir())

    # The lens commands read the run and write their dataset and pack in the bucket (every node's).
    lenses = f"{runs}/shared/lenses"
    assert main(["lenses", "extract", f"{runs}/shared", "--out", f"{lenses}/activations"]) == 0
    train = ["lenses", "train", f"{lenses}/activations", "--out", f"{lenses}/pack", "--workers", "1"]
    assert main([*train, "--epochs", "2"]) == 0
    assert main(["lenses", "eval", f"{lenses}/pack"]) == 0
    files = _files(s3_server, "runs", "shared", "lenses")
    assert "activations/activations.json" in files, sorted(files)
    assert any(f.startswith("activations/train/part-") for f in files), sorted(files)
    pack_files = {"pack/pack.json", "pack/lenses.safetensors", "pack/lens_eval.json", "pack/f1_heatmap.png"}
    assert pack_files <= set(files), sorted(files)
    assert not [f for f in files if ".ray_train" in f]  # the lens job's own checkpoints are removed
    pack = _read_json(s3_server, "runs", "shared", "lenses", "pack", "pack.json")
    assert pack["world_model"]["checkpoint"].startswith(f"{runs}/shared/checkpoints/train/step")
    assert pack["training"]["activations"] == f"{lenses}/activations"
    assert not list(tmp_path.glob("results*")) and not any(staging.iterdir())

    # The replay tools: stats of the bucket's store, an import into the bucket.
    capsys.readouterr()
    assert main(["replay", "stats", f"{runs}/shared/replay", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 4
    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "ep0.npz", **dreamer_arrays(rlds_episode(0, task="cheetah-run", steps=9, image_size=8)))
    imported = s3_server.uri("imported")
    assert (
        main(
            ["replay", "import", "npz", str(npz), "--task", "cheetah-run", "--out", imported, "--no-progress"]
        )
        == 0
    )
    assert [f for f in s3_server.files("imported") if f.endswith(".parquet")], s3_server.files("imported")


def _read_lines(s3_server, *parts: str) -> list[dict]:
    return [json.loads(line) for line in s3_server.read(*parts).decode().splitlines() if line.strip()]
