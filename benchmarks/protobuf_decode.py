"""aime's record parser (the protobuf runtime) against the hand-written decoder it replaced (prints JSON).

    python benchmarks/protobuf_decode.py [--baseline 53d0f50] [--steps 501] [--image-size 64] [--repeats 9]

Records: DMC-VB-shaped episodes (``importers.testing.encode_record``: PNG frames, float32 state,
action and reward lists per step), as an Example and as a SequenceExample. The baseline is the
wire-format decoder of ``aime/replay/importers/protobuf.py`` at the ``--baseline`` commit, loaded
from git into this process, so old and new parse the same bytes side by side. Both return the same
``Feature`` values (checked before timing). Median and spread over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

from aime.replay.importers import protobuf
from aime.replay.importers.testing import encode_record, rlds_episode

MODULE = "aime/replay/importers/protobuf.py"


def baseline_module(commit: str) -> types.ModuleType:
    """The decoder module as it was at ``commit``."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{commit}:{MODULE}"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("aime_protobuf_baseline")
    sys.modules[module.__name__] = module  # dataclasses resolve annotations through sys.modules
    exec(compile(source, f"{commit}:{MODULE}", "exec"), module.__dict__)
    return module


def same(a: Any, b: Any) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "bytes":
        return [bytes(x) for x in a.bytes_values] == [bytes(x) for x in b.bytes_values]
    return bool(np.array_equal(a.numbers, b.numbers))


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def spread(ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def compare(old: Any, record: bytes, sequence: bool, repeats: int) -> dict[str, Any]:
    if sequence:
        (_, a), (_, b) = old.parse_sequence_example(record), protobuf.parse_sequence_example(record)
        assert a.keys() == b.keys() and all(len(a[k]) == len(b[k]) and all(map(same, a[k], b[k])) for k in a)
        old_ms = timed(lambda: old.parse_sequence_example(record), repeats)
        new_ms = timed(lambda: protobuf.parse_sequence_example(record), repeats)
    else:
        a, b = old.parse_example(record), protobuf.parse_example(record)
        assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        old_ms = timed(lambda: old.parse_example(record), repeats)
        new_ms = timed(lambda: protobuf.parse_example(record), repeats)
    return {
        "record_bytes": len(record),
        "hand_written": spread(old_ms),
        "protobuf_runtime": spread(new_ms),
        "speedup_median": round(statistics.median(old_ms) / statistics.median(new_ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="53d0f50", help="commit holding the hand-written decoder")
    parser.add_argument("--steps", type=int, default=501)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    old = baseline_module(args.baseline)
    episode = rlds_episode(0, task="cheetah-run", steps=args.steps, image_size=args.image_size)
    results: dict[str, Any] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "protobuf": protobuf_version,
        "protobuf_implementation": api_implementation.Type(),
        "baseline": args.baseline,
        "steps": args.steps,
        "image_size": args.image_size,
        "repeats": args.repeats,
    }
    for layout, sequence in (("example", False), ("sequence_example", True)):
        results[layout] = compare(old, encode_record(episode, sequence=sequence), sequence, args.repeats)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
