"""Run a benchmark N times, each in a fresh process, and merge its JSON into min/median/max (prints JSON).

    python benchmarks/repeat.py [--repeats 3] [--out merged.json] -- python benchmarks/X.py [args]

Every benchmark here prints one JSON object on stdout. The runs are merged leaf by leaf:

- a number that differs between runs becomes ``{"median", "min", "max", "runs": [...]}``; one that
  is the same in every run (a setting, a count) stays as it is;
- dicts merge key by key, lists of one length item by item; anything else that differs becomes
  ``{"runs": [...]}``;
- a target (``{"value", "threshold", "op", "passed"}``, see targets.py) keeps its threshold and op,
  merges its value, and ``passed`` holds only if it passed in every run (null if any run could not
  say), with ``passed_runs`` ("2/3") beside it.

Each run's wall seconds are in ``seconds``; its stderr goes to this process's stderr; its result is
the last JSON object it printed on stdout. A run that
fails stops the whole command: a merge of fewer runs than asked would read as a full repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_KEYS = {"value", "threshold", "op", "passed"}


def merge(runs: list[Any]) -> Any:
    """One value for the same leaf of every run (see the module docstring)."""
    first = runs[0]
    if all(isinstance(r, dict) for r in runs):
        if TARGET_KEYS <= set(first):
            return _merge_target(runs)
        keys = list(dict.fromkeys(k for r in runs for k in r))
        return {k: merge([r[k] for r in runs if k in r]) for k in keys}
    if all(isinstance(r, list) for r in runs) and len({len(r) for r in runs}) == 1:
        return [merge(list(items)) for items in zip(*runs, strict=True)]
    if all(r == first and type(r) is type(first) for r in runs):
        return first
    if all(_is_number(r) for r in runs):
        return spread(runs)
    return {"runs": runs}


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 4),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def _merge_target(runs: list[dict[str, Any]]) -> dict[str, Any]:
    passed = [r.get("passed") for r in runs]
    out: dict[str, Any] = {
        "value": merge([r.get("value") for r in runs]),
        "threshold": runs[0]["threshold"],
        "op": runs[0]["op"],
        "passed": None if None in passed else all(passed),
        "passed_runs": f"{sum(p is True for p in passed)}/{len(runs)}",
    }
    reasons = [r["reason"] for r in runs if "reason" in r]
    if reasons:
        out["reason"] = merge(reasons)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_once(command: list[str]) -> tuple[Any, float]:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        raise SystemExit(f"repeat: {' '.join(command)} exited {done.returncode}")
    result = last_json_object(done.stdout)
    if result is None:
        raise SystemExit(f"repeat: {' '.join(command)} printed no JSON object on stdout")
    return result, seconds


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in ``text`` (a benchmark's result comes last; anything before
    it, progress lines included, is passed over)."""
    decoder, found, at = json.JSONDecoder(), None, 0
    while (at := text.find("{", at)) != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at += 1
            continue
        if isinstance(value, dict):
            found = value
        at = end
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the merged JSON here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark's command line")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.repeats < 2:
        parser.error("give --repeats >= 2 and a command after --")
    results, seconds = [], []
    for i in range(args.repeats):
        print(f"[repeat] run {i + 1}/{args.repeats}: {' '.join(command)}", file=sys.stderr, flush=True)
        result, took = run_once(command)
        results.append(result)
        seconds.append(took)
    merged = {
        "command": " ".join(command),
        "repeats": args.repeats,
        "seconds": seconds,
        "merged": merge(results),
    }
    text = json.dumps(merged, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
