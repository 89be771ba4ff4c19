"""aime as a package, not only a checkout: a wheel installed elsewhere finds every preset."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_runs_the_entry_points_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheels),
    ]
    subprocess.run([*build, str(ROOT)], check=True, timeout=300)
    (wheel,) = wheels.glob("aime-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The wheel alone in the new environment; its dependencies from this one (a .pth line adds the
    # directory without running this environment's editable-install hook, so the checkout stays out).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, str(wheel)],
        check=True,
        timeout=300,
    )
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, RAY_ADDRESS="", PYTHONPATH="")

    def aime(*args: str, timeout: int = 300) -> str:
        done = subprocess.run(
            [python, "-m", "aime.cli.main", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    where = subprocess.run(
        [python, "-c", "import aime; print(aime.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(site), where  # the installed wheel, not the checkout
    assert "parameters" in aime("model", "summary", "--config", "tiny").lower()
    out = aime(
        "collect",
        "--config",
        "tiny",
        "--episodes",
        "1",
        "--workers",
        "1",
        "--out",
        "replay",
        "--no-progress",
        "results_dir=results",
        timeout=600,
    )
    assert list((elsewhere / "replay").glob("*.parquet")), out
