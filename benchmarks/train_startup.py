"""The trainer's start-up, commit against commit: `aime train` runs alternated between git refs (prints JSON).

    python benchmarks/train_startup.py --replay-root STORE [--refs OLD NEW] [--repeats 3] \
        [--out startup.json] [-- key=value ...]

Each ref is checked out into its own git worktree (the working tree itself when the ref is
``WORKTREE``, the default second ref) and every run is ``python -m aime.cli.main train --config gpu
--no-progress replay.root=STORE train.steps=3 train.checkpoint_every=3 [key=value ...]`` from that
checkout, in a fresh process with its own local Ray. One untimed run per ref first fills the
compile caches (warm caches are what the start-up target allows), then the refs alternate,
``--repeats`` times each, so a machine that slows down during the benchmark slows both alike. Each
run's start-up is its ``train.json`` (``startup``: the seconds to the first step and where they
went, aime/train/driver.py); the JSON gives every run, the median/min/max per ref and phase, and
the ratio of the medians (second ref over first).

On the CPU the runs keep the preset's model but take a batch of 4 and 16 steps
(``train.batch_size=4 train.seq_len=16 ray.num_cpus=8``) unless overridden; ``train.compile_rollout=
default`` compiles the rollout there as GPUs do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import refs  # noqa: E402
from refs import WORKTREE  # noqa: E402


def one_run(source: Path, replay_root: str, results: Path, overrides: list[str]) -> dict[str, Any]:
    """One ``aime train`` from ``source``; its train.json start-up and the command's wall seconds."""
    before = set(results.glob("*/")) if results.exists() else set()
    command = [
        sys.executable, "-m", "aime.cli.main", "train", "--config", "gpu", "--no-progress",
        f"replay.root={replay_root}", "train.steps=3", "train.checkpoint_every=3",
        f"results_dir={results}", *overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=source, env=refs.environment(source), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}")
    (run_dir,) = set(results.glob("*/")) - before
    startup = json.loads((run_dir / "train.json").read_text())["startup"]
    return {"command_seconds": round(seconds, 1), "startup": startup}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per ref and figure (the command's seconds, each start-up phase): median, min, max, runs; and the
    ratio of the second ref's medians to the first's."""
    flat = {
        ref: [{"command_seconds": r["command_seconds"], **r["startup"]} for r in rs]
        for ref, rs in runs.items()
    }
    return refs.summarise(flat)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replay-root", required=True)
    parser.add_argument("--refs", nargs="+", default=["HEAD", WORKTREE])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*", help="key=value for every run")
    args = parser.parse_args()
    overrides = args.overrides or ["train.batch_size=4", "train.seq_len=16", "ray.num_cpus=8"]
    runs = refs.alternate(
        args.refs,
        lambda source, scratch: one_run(source, args.replay_root, scratch / "results", overrides),
        args.repeats,
    )
    result = {
        "benchmark": "train_startup",
        "refs": {ref: refs.describe(ref) for ref in args.refs},
        "overrides": overrides,
        "repeats": args.repeats,
        "runs": runs,
        **summarise(runs),
    }
    refs.emit(result, args.out)


if __name__ == "__main__":
    main()
