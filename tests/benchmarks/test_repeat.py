"""benchmarks/repeat.py: N fresh runs of a benchmark merged into min/median/max."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SPEC = importlib.util.spec_from_file_location("benchmark_repeat", BENCHMARKS / "repeat.py")
assert SPEC is not None and SPEC.loader is not None
repeat = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(repeat)


def test_numbers_that_differ_get_a_spread_and_settings_stay_as_they_are():
    runs = [
        {"config": {"batch": 16, "name": "a"}, "rate": 10.0, "rows": [1, 2.0], "tag": "x"},
        {"config": {"batch": 16, "name": "a"}, "rate": 30.0, "rows": [1, 4.0], "tag": "y"},
        {"config": {"batch": 16, "name": "a"}, "rate": 20.0, "rows": [1, 3.0], "tag": "x", "extra": 1},
    ]
    merged = repeat.merge(runs)
    assert merged["config"] == {"batch": 16, "name": "a"}
    assert merged["rate"] == {"median": 20.0, "min": 10.0, "max": 30.0, "runs": [10.0, 30.0, 20.0]}
    assert merged["rows"] == [1, {"median": 3.0, "min": 2.0, "max": 4.0, "runs": [2.0, 4.0, 3.0]}]
    assert merged["tag"] == {"runs": ["x", "y", "x"]} and merged["extra"] == 1


def test_a_target_passes_only_if_it_passed_in_every_run():
    def target(value, passed):
        return {"t": {"value": value, "threshold": 1.0, "op": ">=", "passed": passed}}

    merged = repeat.merge([target(1.2, True), target(0.9, False), target(1.1, True)])["t"]
    assert merged["passed"] is False and merged["passed_runs"] == "2/3"
    assert merged["value"]["median"] == 1.1 and (merged["threshold"], merged["op"]) == (1.0, ">=")
    unknown = repeat.merge([target(1.2, True), target(None, None)])["t"]
    assert unknown["passed"] is None and unknown["passed_runs"] == "1/2"


def test_the_result_is_the_last_json_object_printed():
    text = 'starting\n{"progress": 1}\n{"rate": {"a": [1, 2]}, "text": "}{"}\ndone\n'
    assert repeat.last_json_object(text) == {"rate": {"a": [1, 2]}, "text": "}{"}
    assert repeat.last_json_object("no result {") is None


def test_the_command_runs_in_fresh_processes_and_a_failure_stops_it(tmp_path):
    counter = tmp_path / "count"
    script = tmp_path / "bench.py"
    script.write_text(
        "import json, os, pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print('log line', file=sys.stderr)\n"
        "print(json.dumps({'progress': n}))\n"
        "print(json.dumps({'pid': os.getpid(), 'run': n, 'fixed': 7}))\n"
        "sys.exit(3 if n == 4 else 0)\n"
    )
    out = tmp_path / "merged.json"
    command = [sys.executable, str(BENCHMARKS / "repeat.py"), "--repeats", "3", "--out", str(out)]
    done = subprocess.run([*command, "--", sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    merged = json.loads(done.stdout)
    assert merged == json.loads(out.read_text()) and merged["repeats"] == 3 and len(merged["seconds"]) == 3
    assert merged["merged"]["run"]["runs"] == [1, 2, 3] and merged["merged"]["fixed"] == 7
    assert len(set(merged["merged"]["pid"]["runs"])) == 3  # each run a process of its own
    failed = subprocess.run([*command, "--", sys.executable, str(script)], capture_output=True, text=True)
    assert failed.returncode != 0 and "exited 3" in failed.stderr and not failed.stdout
