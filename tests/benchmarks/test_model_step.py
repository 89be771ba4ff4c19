"""benchmarks/model_step.py on the CPU: its warm-up diagnostics (each warm-up step's seconds, one of
them under cProfile, torch's own CUDA graph lookups) and its JSON report."""

import json
import subprocess
import sys

from benchmark_scripts import BENCHMARKS

SCRIPT = BENCHMARKS / "model_step.py"


def test_a_cpu_run_reports_each_warmup_step_and_profiles_the_one_asked_for():
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--preset", "tiny", "--steps", "1"]
    command += ["--warmup", "2", "--modes", "fp32", "--balancing", "sum", "--cudagraph-lookups", "torch"]
    done = subprocess.run(
        [*command, "--profile-warmup-step", "2"], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    (row,) = report["results"]
    assert report["cudagraph_lookups"] == "torch" and len(row["warmup_step_s"]) == 2
    names = [entry["function"] for entry in row["warmup_profile"]]
    assert any("(step)" in name for name in names), names  # the profiled step, with its callees
    assert row["warmup_profile"][0]["cumulative_s"] <= row["warmup_step_s"][1] + 0.05
