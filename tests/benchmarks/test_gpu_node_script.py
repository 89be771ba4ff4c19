"""benchmarks/gpu_node.sh: the GPU node's steps by name; a misspelt step stops it before any work, and
a step that ran leaves its done_<step> marker for a caller that polls."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_node.sh"


def test_an_unknown_step_is_refused_by_name_and_nothing_is_marked_done(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path), "warmm"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown step: warmm (tests fill warm serve collect)" in out.stderr
    assert not list(tmp_path.glob("done_*"))


def test_without_an_output_folder_it_says_how_to_call_it():
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode != 0 and "usage: benchmarks/gpu_node.sh OUT_DIR" in out.stderr
