"""benchmarks/model_step.py on the CPU: its warm-up diagnostics (each warm-up step's seconds, one of
them under cProfile, torch.cuda.empty_cache held off and then put back) and its JSON report."""

import json
import subprocess
import sys

import torch
from benchmark_scripts import BENCHMARKS, load_benchmark

model_step = load_benchmark("model_step")
SCRIPT = BENCHMARKS / "model_step.py"


def test_a_cpu_run_reports_each_warmup_step_and_profiles_the_one_asked_for():
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--preset", "tiny", "--steps", "1"]
    command += ["--warmup", "2", "--modes", "fp32", "--balancing", "sum", "--capture-empty-cache", "off"]
    done = subprocess.run(
        [*command, "--profile-warmup-step", "2"], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    (row,) = report["results"]
    assert report["capture_empty_cache"] == "off" and len(row["warmup_step_s"]) == 2
    names = [entry["function"] for entry in row["warmup_profile"]]
    assert any("(step)" in name for name in names), names  # the profiled step, with its callees
    assert row["warmup_profile"][0]["cumulative_s"] <= row["warmup_step_s"][1] + 0.05


def test_empty_cache_is_a_no_op_only_inside_and_comes_back_after_an_error():
    original = torch.cuda.empty_cache
    try:
        with model_step.empty_cache_during_warmup(False):
            assert torch.cuda.empty_cache is not original
            torch.cuda.empty_cache()  # does nothing, even without CUDA
            raise KeyError("a failing warm-up")
    except KeyError:
        pass
    assert torch.cuda.empty_cache is original
    with model_step.empty_cache_during_warmup(True):
        assert torch.cuda.empty_cache is original
