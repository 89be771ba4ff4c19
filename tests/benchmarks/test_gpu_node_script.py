"""benchmarks/gpu_node.sh and multi_gpu_node.sh: the steps by name; a misspelt step stops them before
any work, and a step that ran leaves its done_<step> marker for a caller that polls. With PYTHON=echo
the multi-GPU script logs the commands it would run, which are checked against the GPU count."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_node.sh"


def test_an_unknown_step_is_refused_by_name_and_nothing_is_marked_done(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path), "warmm"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown step: warmm (tests fill warm imports serve collect)" in out.stderr
    assert not list(tmp_path.glob("done_*"))


def test_without_an_output_folder_it_says_how_to_call_it():
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode != 0 and "usage: benchmarks/gpu_node.sh OUT_DIR" in out.stderr


MULTI = SCRIPT.parent / "multi_gpu_node.sh"


def _multi(tmp_path, *steps, **env):
    environment = {**os.environ, "PYTHON": "echo", **env}  # echo: the commands it would run, logged
    return subprocess.run(
        ["bash", str(MULTI), str(tmp_path / "out"), *steps],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
    )


def test_the_multi_gpu_script_refuses_an_unknown_step_and_a_host_without_gpus(tmp_path):
    out = _multi(tmp_path, "main", "z2-sum-4", GPUS="4")
    assert out.returncode == 2 and "unknown step: z2-sum-4 (z2-sum-48 main capacity" in out.stderr
    assert not list((tmp_path / "out").glob("done_*"))  # refused before the valid step ran
    out = _multi(tmp_path, "main", GPUS="0")
    assert out.returncode == 2 and "no GPU on this host" in out.stderr


def test_the_multi_gpu_steps_scale_over_doubling_gpu_counts_and_use_every_gpu_for_the_main_job(tmp_path):
    out = _multi(tmp_path, "z3-sum-64", "main", "capacity", GPUS="4")
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "out"
    assert sorted(p.name for p in folder.glob("done_*")) == ["done_capacity", "done_main", "done_z3-sum-64"]
    scaling = (folder / "z3-sum-64.log").read_text()
    assert "train_gpu.py --workers 1 2 4 --batch-size 64 --balancing sum --zero-stage 3" in scaling
    main = (folder / "main.log").read_text()
    assert "train.num_workers=4 collect.workers=4 collect.envs_per_worker=16" in main
    assert "collect.online_episodes=6144" in main
    assert "zero_capacity.py --workers 4 --widths 1 32 48 --bisect 2" in (folder / "capacity.log").read_text()
