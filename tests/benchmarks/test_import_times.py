"""benchmarks/import_times.py on real ``-X importtime`` logs: the per-package sums and the top-level
imports, and the filter that picks one Ray actor's log among many."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "import_times.py"
sys.path.insert(0, str(SCRIPT.parent))
from import_times import parse, summarise  # noqa: E402


def _log(tmp_path: Path, name: str, code: str) -> Path:
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    path = tmp_path / name
    path.write_text(stderr)
    return path


def test_a_real_log_is_summed_by_package_and_its_outermost_imports_are_found(tmp_path):
    log = _log(tmp_path, "worker-1.err", "import json.decoder, email.message")
    imports = parse(log.read_text().splitlines())
    assert imports and all(own <= total for _, _, own, total in imports)
    summary = summarise(log, top=50)
    assert {"json", "email"} <= set(summary["by_package"])
    # Every module's own time is counted once: the total is their sum, and no package exceeds it.
    assert summary["import_seconds"] > 0
    assert max(summary["by_package"].values()) <= summary["import_seconds"] + 1e-3
    outermost = {entry["module"] for entry in summary["slowest_top_level"]}
    assert "json.decoder" in outermost or "json" in outermost
    assert "json.scanner" not in outermost  # imported by json.decoder: nested, not top level


def test_only_the_logs_that_name_the_actor_are_reported(tmp_path):
    named = "import sys; sys.stderr.write(':actor_name:RayTrainWorker\\n'); import json"  # as Ray logs it
    trainer = _log(tmp_path, "worker-2.err", named)
    _log(tmp_path, "worker-3.err", "import email")
    (tmp_path / "worker-4.err").write_text("no import timings here\n")
    logs = sorted(str(p) for p in tmp_path.glob("worker-*.err"))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *logs, "--match", "RayTrainWorker"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [r["log"] for r in json.loads(out.stdout)] == [str(trainer)]
    everything = subprocess.run([sys.executable, str(SCRIPT), *logs], capture_output=True, text=True)
    assert len(json.loads(everything.stdout)) == 2
