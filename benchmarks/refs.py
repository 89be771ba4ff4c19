"""Benchmarks that alternate git refs in one run: each ref's checkout, the environment that runs its
aime, and the per-ref spread with the ratio of the medians (train_startup.py, stream_startup.py).

A ref is checked out into its own detached git worktree; ``WORKTREE`` is the working tree as it is,
uncommitted changes included. A run from a checkout is a fresh process with that checkout first on
PYTHONPATH, so its local Ray's workers (which inherit it) import the same aime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repeat import spread

REPO = Path(__file__).resolve().parents[1]
WORKTREE = "WORKTREE"  # the working tree as it is, uncommitted changes included


def checkout(ref: str, parent: Path) -> Path:
    """A checkout of ``ref``: the repository itself for WORKTREE, else a detached git worktree."""
    if ref == WORKTREE:
        return REPO
    path = parent / ref.replace("/", "_")
    add = ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref]
    subprocess.run(add, check=True, stdout=sys.stderr)  # stdout is the benchmark's JSON alone
    return path


def remove(source: Path) -> None:
    """Remove a checkout made by ``checkout`` (the repository itself stays)."""
    if source != REPO:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(source)])


def environment(source: Path) -> dict[str, str]:
    """This process's environment with ``source`` first on PYTHONPATH (its aime, in the driver and in
    the workers of the local Ray it starts, which inherit it) and the repository itself off it."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    path = os.pathsep.join([str(source), *kept])
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": path}


def describe(ref: str) -> str:
    """``<hash> <subject>`` of a ref, or what WORKTREE means."""
    if ref == WORKTREE:
        return "the working tree"
    out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s", ref], capture_output=True)
    return out.stdout.decode().strip()


def summarise(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Per ref and figure: median, min, max, runs; and the ratio of the second ref's medians to the
    first's (none unless there are two refs)."""
    per_ref: dict[str, dict[str, Any]] = {}
    for ref, results in runs.items():
        figures: dict[str, list[float]] = {}
        for result in results:
            for name, value in result.items():
                figures.setdefault(name, []).append(value)
        per_ref[ref] = {k: spread(v) for k, v in figures.items()}
    refs = list(per_ref)
    ratios = {}
    if len(refs) == 2:
        first, second = per_ref[refs[0]], per_ref[refs[1]]
        ratios = {
            k: round(second[k]["median"] / first[k]["median"], 3)
            for k in first
            if k in second and first[k]["median"]
        }
    return {"by_ref": per_ref, "ratio_of_medians": ratios}


def alternate(
    names: list[str], run: Callable[[Path, Path], dict[str, Any]], repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """``run(checkout, scratch)`` for each ref: once untimed (caches and the OS file cache warm), then
    the refs in turn ``repeats`` times, so a machine that slows down slows them alike. The checkouts
    and the scratch folder are removed afterwards. Returns each ref's timed results."""
    runs: dict[str, list[dict[str, Any]]] = {ref: [] for ref in names}
    with tempfile.TemporaryDirectory(prefix="aime-refs-", dir=REPO.parent) as folder:
        scratch = Path(folder)
        sources = {ref: checkout(ref, scratch) for ref in names}
        try:
            for ref, source in sources.items():
                print(f"untimed {ref}: {run(source, scratch)}", file=sys.stderr)
            for repeat in range(repeats):
                for ref, source in sources.items():
                    runs[ref].append(run(source, scratch))
                    print(f"run {repeat + 1} {ref}: {runs[ref][-1]}", file=sys.stderr)
        finally:
            for source in sources.values():
                remove(source)
    return runs


def emit(result: dict[str, Any], out: str | None) -> None:
    """The benchmark's JSON on stdout, and in ``out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
