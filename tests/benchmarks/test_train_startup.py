"""benchmarks/train_startup.py: the per-ref medians of the command's seconds and each start-up phase,
and their ratio."""

import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_startup.py"
sys.path.insert(0, str(SCRIPT.parent))
import train_startup  # noqa: E402


def _run(seconds: float, total: float, first_step: float) -> dict:
    return {"command_seconds": seconds, "startup": {"total": total, "first_step": first_step}}


def test_medians_per_ref_and_the_second_refs_ratio_to_the_first():
    runs = {
        "old": [_run(30, 24.0, 7.0), _run(31, 22.0, 8.0), _run(29, 26.0, 7.0)],
        "new": [_run(25, 18.0, 5.0), _run(26, 20.0, 6.0), _run(24, 17.0, 5.0)],
    }
    summary = train_startup.summarise(runs)
    old_total = {"median": 24.0, "min": 22.0, "max": 26.0, "runs": [24.0, 22.0, 26.0]}
    assert summary["by_ref"]["old"]["total"] == old_total
    assert summary["by_ref"]["new"]["first_step"]["median"] == 5.0
    assert summary["ratio_of_medians"] == {"command_seconds": 0.833, "total": 0.75, "first_step": 0.714}
    assert train_startup.summarise({"only": runs["old"]})["ratio_of_medians"] == {}
