"""The main job as users run it on a GPU node, timed as a whole (prints JSON).

    python benchmarks/main_job_gpu.py [--config gpu] [--out results.json] [key=value ...]

Runs ``aime run --config <config> [key=value ...]`` in a subprocess (its console goes to
``<run_dir>/../main_job_console.log``), samples GPU utilisation every 200 ms throughout, then reads
the run directory:

- whole job: wall seconds from the command's start to its exit, and the phases (collection, training
  from the trainer's start to its last report, evaluation and figures after it);
- start-up: seconds from the trainer's start to its first step and where they went (``train.json``);
- online collection: the trainer's samples/s in the log intervals that ended while the online actors
  were writing, against those that ended after the last online episode (the trainer alone, same run,
  same store); the first step's interval (compilation) and the intervals that held a checkpoint's
  save and periodic evaluation are left out of both;
- GPU utilisation over the whole training phase (from the trainer's start, and from its first step),
  read with NVML (else nvidia-smi) on the GPUs the job's Ray could assign: those of
  CUDA_VISIBLE_DEVICES, else the host's; where there are more of them than trainer workers, the
  busiest stand in (``selection`` says so): pin the job with CUDA_VISIBLE_DEVICES on a shared host;
- quality: the held-out open-loop report (``eval.json``): PSNR and SSIM at one step and averaged over
  the first 10 predicted steps, model against copy-last-frame; and the periodic evaluation's PSNR
  gains at each checkpoint (the learning curve).

Targets (issue 16): samples/s during online collection >= 0.8x after it; the first step <= 60 s after
the trainer starts; GPU utilisation over the training phase (from the trainer's start) >= 80%; the
whole job <= 20 minutes; PSNR over copy-last-frame >= 1 dB at one step and >= 3 dB averaged over
H=10; SSIM above copy-last-frame (one step and over H=10). All are set on a GPU node: a run
without an NVIDIA GPU reports them with ``passed: null``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_utilisation import GpuSampler, gpu_names, visible_gpus  # noqa: E402
from targets import check, only  # noqa: E402

SAMPLES = "train/samples_per_second"


def run_main_job(config: str, overrides: list[str], log: Path) -> dict[str, Any]:
    """``aime run`` in a subprocess; the wall times at which its console lines first appeared."""
    command = [sys.executable, "-m", "aime.cli.main", "run", "--config", config, *overrides]
    marks: dict[str, float] = {}
    started = time.time()
    with log.open("w") as console:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert process.stdout is not None
        for line in process.stdout:
            console.write(line)
            console.flush()
            for mark, prefix in (("run_dir", "run directory "), ("train", "[2/3]"), ("eval", "[3/3]")):
                if line.startswith(prefix) and mark not in marks:
                    marks[mark] = time.time()
                    if mark == "run_dir":
                        marks["path"] = line.removeprefix(prefix).strip()  # type: ignore[assignment]
        code = process.wait()
    return {"command": command, "exit_code": code, "started": started, "ended": time.time(), "marks": marks}


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def online_contention(run_dir: Path, checkpoint_every: int) -> dict[str, Any]:
    """Trainer samples/s while the online actors wrote episodes, against after they finished."""
    train = [r for r in records(run_dir / "metrics.jsonl") if SAMPLES in r]
    online = records(run_dir / "online_collect_metrics.jsonl")
    steady = [r for r in train[1:] if r["step"] % checkpoint_every]  # no compile, no save/eval interval
    if not online:
        return {"online_records": 0, "all": spread([r[SAMPLES] for r in steady])}
    online_end = max(r["time"] for r in online)
    during = [r[SAMPLES] for r in steady if r["time"] <= online_end]
    after = [r[SAMPLES] for r in steady if r["time"] > online_end]
    out: dict[str, Any] = {
        "online_seconds": round(online_end - min(r["time"] for r in online), 1),
        "online_frames": max((r.get("env/frames", 0) for r in online), default=0),
        "during_online": spread(during),
        "after_online": spread(after),
    }
    if during and after:
        out["ratio_median"] = round(statistics.median(during) / statistics.median(after), 3)
    return out


def quality(run_dir: Path, horizon: int = 10) -> dict[str, Any]:
    report = json.loads((run_dir / "eval.json").read_text())
    out: dict[str, Any] = {"step": report["step"], "windows": report["windows"], "horizon": report["horizon"]}
    for metric in ("psnr", "ssim"):
        for predictor in ("model", "baseline"):
            curve = report["per_step"][predictor][metric]
            out[f"{metric}_one_step/{predictor}"] = round(curve[0], 3)
            out[f"{metric}_mean_h{horizon}/{predictor}"] = round(statistics.fmean(curve[:horizon]), 3)
        out[f"{metric}_gain_one_step"] = round(
            out[f"{metric}_one_step/model"] - out[f"{metric}_one_step/baseline"], 3
        )
        out[f"{metric}_gain_mean_h{horizon}"] = round(
            out[f"{metric}_mean_h{horizon}/model"] - out[f"{metric}_mean_h{horizon}/baseline"], 3
        )
    return out


def learning_curve(run_dir: Path) -> list[dict[str, float]]:
    """The periodic held-out evaluation at each checkpoint: PSNR gains over copy-last-frame (dB)."""
    keys = {"psnr_gain_one_step": "eval/psnr_gain_one_step", "psnr_gain_mean_h10": "eval/psnr_gain_mean"}
    return [
        {"step": r["step"]} | {name: round(r[key], 3) for name, key in keys.items()}
        for r in records(run_dir / "metrics.jsonl")
        if keys["psnr_gain_one_step"] in r
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="gpu")
    parser.add_argument("--out")
    parser.add_argument("--console-log", default="main_job_console.log")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    with GpuSampler() as gpu:
        job = run_main_job(args.config, args.overrides, Path(args.console_log))
    marks = job["marks"]
    run_dir = Path(marks["path"])
    train_records = [r for r in records(run_dir / "metrics.jsonl") if SAMPLES in r]
    summary = (
        json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    )
    cfg_checkpoint_every = int(_config_value(run_dir, "train", "checkpoint_every"))
    workers = int(_config_value(run_dir, "train", "num_workers"))
    visible = visible_gpus()
    assigned = visible if len(visible) == workers else None  # Ray had exactly these to give
    train_start = marks.get("train", job["ended"])
    train_end = train_records[-1]["time"] if train_records else job["ended"]
    first_step = summary.get("train", {}).get("seconds_to_first_step")
    result: dict[str, Any] = {
        "benchmark": "main_job_gpu",
        "command": " ".join(["aime", "run", "--config", args.config, *args.overrides]),
        "exit_code": job["exit_code"],
        "run_dir": str(run_dir),
        "whole_job_seconds": round(job["ended"] - job["started"], 1),
        "phases_seconds": {
            "start_and_collect": round(train_start - job["started"], 1),
            "train": round(train_end - train_start, 1),
            "eval_and_figures": round(job["ended"] - train_end, 1),
        },
        "seconds_to_first_step": first_step,
        "startup": summary.get("train", {}).get("startup"),  # where they went (aime/train/startup.py)
        "online": online_contention(run_dir, cfg_checkpoint_every),
        "gpu_utilisation": {
            "from_trainer_start": gpu.mean([(train_start, train_end)], assigned, workers),
            "from_first_step": gpu.mean([(train_start + (first_step or 0), train_end)], assigned, workers),
        },
        "quality": quality(run_dir) if (run_dir / "eval.json").exists() else None,
        "learning_curve": learning_curve(run_dir),  # periodic eval: its own windows, also H=10
        "collect": summary.get("collect"),
        "online_collect": summary.get("online_collect"),
        "gpu": ", ".join(gpu_names()) or "none",
        "date": time.strftime("%Y-%m-%d"),
    }
    result["targets"] = job_targets(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def job_targets(result: dict[str, Any]) -> dict[str, Any]:
    """Issue 16's targets for the main job, all set on a GPU node: none applies on a CPU run."""
    on_gpu = only(result["gpu"] != "none", "a GPU node's target; this run: no NVIDIA GPU")
    q = result["quality"] or {}
    utilisation = result["gpu_utilisation"]["from_trainer_start"]["mean"]
    targets = {
        "online_over_after_samples_per_second": (result["online"].get("ratio_median"), ">=", 0.8),
        "seconds_to_first_step": (result["seconds_to_first_step"], "<=", 60.0),
        "gpu_utilisation_percent_training_phase": (utilisation, ">=", 80.0),
        "whole_job_seconds": (result["whole_job_seconds"], "<=", 1200.0),
        "psnr_gain_one_step_db": (q.get("psnr_gain_one_step"), ">=", 1.0),
        "psnr_gain_mean_h10_db": (q.get("psnr_gain_mean_h10"), ">=", 3.0),
        "ssim_gain_one_step": (q.get("ssim_gain_one_step"), ">", 0.0),
        "ssim_gain_mean_h10": (q.get("ssim_gain_mean_h10"), ">", 0.0),
    }
    return check({name: (*target, on_gpu) for name, target in targets.items()})


def _config_value(run_dir: Path, section: str, key: str) -> Any:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())[section][key]


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
