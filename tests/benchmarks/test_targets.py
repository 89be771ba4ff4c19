"""The benchmarks' shared target check (benchmarks/targets.py), loaded from its file: benchmarks/ is
a folder of scripts, not a package."""

import json

import pytest
from benchmark_scripts import load_benchmark

targets = load_benchmark("targets")


def test_pass_and_fail_are_computed():
    out = targets.check(
        {
            "ratio": (0.92, ">=", 0.9),
            "scaling": (1.7, ">=", 1.8),
            "data_wait": (0.05, "<", 0.05),
            "first_step_seconds": (42.0, "<=", 60),
            "errors_5xx": (0, "==", 0),
        }
    )
    assert out["ratio"] == {"value": 0.92, "threshold": 0.9, "op": ">=", "passed": True}
    assert out["scaling"]["passed"] is False
    assert out["data_wait"]["passed"] is False  # strict: equal to the bound fails
    assert out["first_step_seconds"]["passed"] is True
    assert out["errors_5xx"]["passed"] is True
    assert all("reason" not in entry for entry in out.values()), out


def test_not_applicable_has_no_verdict_and_a_reason():
    on_gpu = False
    out = targets.check(
        {
            "gpu_frames": (580.0, ">=", 20_000, targets.only(on_gpu, "a GPU target; this run: CPU")),
            "cpu_ratio": (0.95, ">=", 0.9, targets.only(True, "never shown")),
        }
    )
    assert out["gpu_frames"]["passed"] is None
    assert out["gpu_frames"]["reason"] == "a GPU target; this run: CPU"
    assert out["gpu_frames"]["value"] == 580.0  # the figure is still reported
    assert out["cpu_ratio"]["passed"] is True and "reason" not in out["cpu_ratio"]


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_figure_not_measured_is_neither_pass_nor_fail(missing):
    out = targets.check({"utilisation": (missing, ">=", 90)})
    assert out["utilisation"]["passed"] is None
    assert out["utilisation"]["reason"] == "not measured in this run"


def test_verdicts_are_json_booleans_even_from_numpy():
    np = pytest.importorskip("numpy")
    out = targets.check({"ratio": (np.float64(1.2), ">=", 1.0)})
    assert json.loads(json.dumps(out))["ratio"]["passed"] is True


def test_unknown_op_names_the_target():
    with pytest.raises(ValueError, match="'ratio'.*'=>'"):
        targets.check({"ratio": (1.0, "=>", 0.9)})
