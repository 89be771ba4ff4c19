"""Targets a benchmark's figures are held to, checked in the run that measured them. Every benchmark
with a target puts ``check({...})`` under ``"targets"`` in its JSON; import it from a script in
benchmarks/ (``from targets import check, only``).

    check({
        "ratio_b_over_a": (0.92, ">=", 0.9),
        "c_steady_frames_per_second": (580.0, ">=", 20_000, only(on_gpu, "a GPU target; this run: CPU")),
    })
    # {"ratio_b_over_a": {"value": 0.92, "threshold": 0.9, "op": ">=", "passed": true},
    #  "c_steady_frames_per_second": {..., "passed": null, "reason": "a GPU target; this run: CPU"}}

``passed`` is null, with a ``reason``, where the target does not apply to this run (a GPU target on a
CPU machine, a 32-client target in a run that stopped at 8) or the figure was not measured (None or
NaN): a figure that was not held to its target must not read as a pass or a fail.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


def only(applies: bool, reason: str) -> str | None:
    """The fourth element of a target: None where it applies, else the reason it does not."""
    return None if applies else reason


def check(targets: Mapping[str, tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    """``{name: (value, op, threshold[, reason it does not apply or None])}`` -> ``{name: {"value",
    "threshold", "op", "passed"[, "reason"]}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, target in targets.items():
        assert len(target) in (3, 4), (name, target, "want (value, op, threshold[, reason])")
        value, op, threshold = target[:3]
        not_applicable = target[3] if len(target) == 4 else None
        if op not in OPS:
            raise ValueError(f"target {name!r}: unknown op {op!r}; one of {sorted(OPS)}")
        entry: dict[str, Any] = {"value": value, "threshold": threshold, "op": op, "passed": None}
        if not_applicable is not None:
            entry["reason"] = not_applicable
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            entry["reason"] = "not measured in this run"
        else:
            entry["passed"] = bool(OPS[op](value, threshold))
        out[name] = entry
    return out
