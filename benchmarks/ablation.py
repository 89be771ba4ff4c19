"""The pillar ablation's table and its trials per hour, from finished trials (prints JSON).

    python benchmarks/ablation.py record results/sweeps/ablation-<time> [...]   # add finished trials
    python benchmarks/ablation.py table [--gpu-trial-seconds S]                  # the table, trials/hour

``aime tune --config ablation`` runs 15 trials (5 arms x 3 seeds) of about 17 minutes each on a 2-core
machine, longer than one working session, so the sweep is run in parts (``space.variant`` / ``space.seed``
overrides pick the arms and seeds not yet recorded) and ``record`` keeps each finished trial's figures in
``benchmarks/results/cpu/ablation.json`` (keyed by arm and seed; the code commit and the date are kept
with each). ``table`` prints, for each arm, the mean and the range over seeds of the held-out gains over
copy-last-frame (the last periodic evaluation: PSNR at one step and averaged over H=10, SSIM over H=10),
the parameters and the training samples/s, each arm's difference from ``all`` and whether the seeds'
ranges overlap; and trials per hour: measured here (one trial at a time: 3600 / the median trial's wall
seconds, start-up included), and for a 4-GPU node calculated as 4 x 3600 / ``--gpu-trial-seconds`` (one
trial per GPU; pass the whole-trial seconds measured on one GPU), stated as a calculation.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "cpu" / "ablation.json"
ARMS = ("all", "no_perception", "no_attention", "small_prior", "sum_balancing")
GAINS = {
    "psnr_gain_one_step": ("eval/psnr_one_step/model", "eval/psnr_one_step/baseline"),
    "psnr_gain_mean_h10": ("eval/psnr_mean/model", "eval/psnr_mean/baseline"),
    "ssim_gain_mean_h10": ("eval/ssim_mean/model", "eval/ssim_mean/baseline"),
}


def trial_record(trial: Path) -> dict[str, Any] | None:
    """A finished trial's figures, or None while it runs (no train.json yet)."""
    if not (trial / "train.json").exists():
        return None
    records = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines() if line]
    evaluation = [r for r in records if GAINS["psnr_gain_one_step"][0] in r][-1]
    speeds = [r["train/samples_per_second"] for r in records if "train/samples_per_second" in r][1:-1]
    checkpoint = json.loads((trial / "train.json").read_text())["checkpoint"]
    return {
        **json.loads((trial / "params.json").read_text()),
        "trial": trial.name,
        "step": evaluation["step"],
        **{name: evaluation[model] - evaluation[base] for name, (model, base) in GAINS.items()},
        "samples_per_second": statistics.median(speeds),
        "params": parameter_count(Path(checkpoint) / "model.safetensors"),
        # From the trial's start (its config written) to its end (train.json): start-up included.
        "wall_seconds": round(
            (trial / "train.json").stat().st_mtime - (trial / "config.yaml").stat().st_mtime, 1
        ),
    }


def parameter_count(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as tensors:
        return sum(math.prod(tensors.get_slice(name).get_shape()) for name in tensors.keys())  # noqa: SIM118


def record(experiments: list[Path], results: Path) -> dict[str, Any]:
    stored = json.loads(results.read_text()) if results.exists() else {"trials": {}}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    for experiment in experiments:
        for trial in sorted((experiment / "trials").iterdir()):
            found = trial_record(trial)
            if found is not None:
                key = f"{found['variant']}/seed{found['seed']}"
                stored["trials"][key] = {**found, "commit": commit, "date": time.strftime("%Y-%m-%d")}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return stored


def table(stored: dict[str, Any], gpu_trial_seconds: float | None) -> dict[str, Any]:
    trials = list(stored["trials"].values())
    arms: dict[str, Any] = {}
    for arm in ARMS:
        runs = [t for t in trials if t["variant"] == arm]
        if runs:
            arms[arm] = {"seeds": sorted(t["seed"] for t in runs)} | {
                name: _spread([t[name] for t in runs])
                for name in (*GAINS, "samples_per_second", "params", "wall_seconds")
            }
    reference = arms.get("all")
    for arm, row in arms.items():
        if reference is not None and arm != "all":
            row["vs_all"] = {name: _versus(row[name], reference[name]) for name in GAINS}
    walls = [t["wall_seconds"] for t in trials]
    hourly: dict[str, Any] = {"trials_measured": len(walls)}
    if walls:
        hourly["this_machine"] = round(3600 / statistics.median(walls), 2)
    if gpu_trial_seconds:
        hourly["gpu_node_4x_calculated"] = {
            "value": round(4 * 3600 / gpu_trial_seconds, 1),
            "how": f"4 GPUs x 3600 s / {gpu_trial_seconds:g} s per trial on one GPU (measured)",
        }
    return {"benchmark": "ablation", "arms": arms, "trials_per_hour": hourly}


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "n": len(values)}


def _versus(row: dict[str, float], reference: dict[str, float]) -> dict[str, Any]:
    overlap = row["min"] <= reference["max"] and reference["min"] <= row["max"]
    return {"difference": row["mean"] - reference["mean"], "seed_ranges_overlap": overlap}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| arm | seeds | PSNR gain, one step (dB) | PSNR gain, H=10 (dB) | SSIM gain, H=10 | params "
        "| samples/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in result["arms"].items():
        cells = [f"{row[n]['mean']:+.2f} [{row[n]['min']:+.2f}, {row[n]['max']:+.2f}]" for n in GAINS]
        lines.append(
            f"| {arm} | {len(row['seeds'])} | {' | '.join(cells)} | {row['params']['mean']:,.0f} "
            f"| {row['samples_per_second']['mean']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["record", "table"])
    parser.add_argument("experiments", nargs="*", type=Path)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--gpu-trial-seconds", type=float, default=None)
    args = parser.parse_args()
    stored = (
        record(args.experiments, args.results)
        if args.action == "record"
        else json.loads(args.results.read_text())
    )
    result = table(stored, args.gpu_trial_seconds)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
