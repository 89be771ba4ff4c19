"""zero_capacity.py (issue 17): which widths it probes, how it judges the target, and one real probe
on two CPU workers under ZeRO-3 through aime's own build_engine and train_microbatch."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from benchmark_scripts import BENCHMARKS, load_benchmark

from aime.config import Config, load_config
from aime.models import WorldModel

capacity = load_benchmark("zero_capacity")


def _probes(args, fits_below: int) -> list[tuple[int, str]]:
    """The widths ``next_width`` chooses when every width below ``fits_below`` fits."""
    results: list[dict] = []
    while (chosen := capacity.next_width(args, results)) is not None:
        k, phase = chosen
        results.append({"width": k, "fits": k < fits_below, "phase": phase})
    return [(r["width"], r["phase"]) for r in results]


def test_widths_double_until_a_failure_then_the_gap_is_bisected():
    args = capacity.parse_args(["--bisect", "3"])
    doubling = [(1, "doubling"), (2, "doubling"), (4, "doubling"), (8, "doubling"), (16, "doubling")]
    assert _probes(args, fits_below=11) == [
        *doubling,
        (12, "bisection"),
        (10, "bisection"),
        (11, "bisection"),
    ]
    # Bisection stops when the gap is closed, and listed widths replace the doubling.
    assert _probes(args, fits_below=2) == [(1, "doubling"), (2, "doubling")]
    listed = capacity.parse_args(["--widths", "1", "8", "32", "--bisect", "1"])
    assert _probes(listed, fits_below=20) == [(1, "listed"), (8, "listed"), (32, "listed"), (20, "bisection")]
    assert _probes(capacity.parse_args(["--max-width", "4"]), fits_below=99) == [
        (1, "doubling"),
        (2, "doubling"),
        (4, "doubling"),
    ]


def test_the_target_needs_a_zero3_fit_where_zero2_ran_out():
    def probe(stage, k, fits, out_of_memory=None):
        oom = not fits if out_of_memory is None else out_of_memory
        return {
            "zero_stage": stage,
            "width": k,
            "fits": fits,
            "parameters": 100 * k * k,
            "out_of_memory": oom,
        }

    both_fit = [probe(2, 1, True), probe(3, 1, True), probe(2, 4, True), probe(3, 4, True)]
    out = capacity.capacity_summary(both_fit)
    assert out["largest"]["zero3"] == {"width": 4, "parameters": 1600, "vs_preset": 16.0}
    assert out["targets"]["zero3_fit_where_zero2_failed_vs_preset"]["passed"] is None
    # A ZeRO-2 probe that timed out is no evidence that it ran out of memory.
    timed_out = capacity.capacity_summary(
        [*both_fit, probe(2, 6, False, out_of_memory=False), probe(3, 6, True)]
    )
    assert timed_out["targets"]["zero3_fit_where_zero2_failed_vs_preset"]["passed"] is None
    out = capacity.capacity_summary([*both_fit, probe(2, 6, False), probe(3, 6, True), probe(3, 8, False)])
    target = out["targets"]["zero3_fit_where_zero2_failed_vs_preset"]
    assert target["value"] == 36.0 and target["passed"] is True
    assert out["largest"]["zero2"]["width"] == 4 and out["largest"]["zero3"]["width"] == 6


def test_a_wider_model_keeps_its_architecture_with_about_k_squared_parameters():
    cfg = load_config(Config, "tiny")
    counts = {}
    for k in (1, 3):
        torch.manual_seed(0)
        model = WorldModel(capacity.widened(cfg.model, k))
        counts[k] = sum(p.numel() for p in model.parameters())
    assert 4 * counts[1] < counts[3] <= 9 * counts[1], counts


def test_a_zero3_probe_on_two_cpu_workers_trains_and_reports_every_rank(tmp_path):
    out = tmp_path / "capacity.json"
    command = [sys.executable, str(BENCHMARKS / "zero_capacity.py"), "--cpu", "--workers", "2"]
    command += ["--preset", "tiny", "--image-size", "32", "--seq-len", "8", "--stages", "3", "--widths", "2"]
    done = subprocess.run([*command, "--steps", "2", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    (probe,) = result["probes"]
    assert probe["fits"] and probe["ranks_reported"] == 2 and not probe["errors"], probe
    assert probe["peak_rss_gb_max_rank"] > 0 and probe["peak_allocated_gb_max_rank"] is None  # CPU workers
    # ZeRO-3 partitions the weights: the count is of the whole model, as built outside DeepSpeed.
    cfg = load_config(Config, "tiny", ["model.optim.balancing.mode=sum"])
    whole = sum(p.numel() for p in WorldModel(capacity.widened(cfg.model, 2)).parameters())
    assert probe["parameters"] == whole
    assert result["largest"]["zero3"]["width"] == 2
