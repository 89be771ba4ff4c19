"""train_gpu.py's scaling targets (issue 17): each GPU count is judged against 1 GPU's samples/s, and
a count that was not run has no verdict and says what it needs."""

from benchmark_scripts import load_benchmark


def test_scaling_is_judged_at_2_4_and_8_gpus_and_a_count_not_run_has_no_verdict():
    runs = [
        {"gpus": 1, "gpu_utilisation_percent": 91.0},
        {"gpus": 2, "gpu_utilisation_percent": 90.5, "scaling_vs_1_gpu": 1.95},
        {"gpus": 4, "gpu_utilisation_percent": 88.0, "scaling_vs_1_gpu": 3.4},
    ]
    out = load_benchmark("train_gpu").scaling_and_utilisation_targets(runs)
    assert out["scaling_2_gpus"]["passed"] is True and out["scaling_2_gpus"]["threshold"] == 1.8
    assert out["scaling_4_gpus"]["passed"] is False and out["scaling_4_gpus"]["threshold"] == 3.6
    assert out["scaling_8_gpus"]["passed"] is None
    assert out["scaling_8_gpus"]["reason"] == "needs runs on 1 and 8 GPUs"
    assert out["gpu_utilisation_percent_4_gpus"]["passed"] is False
