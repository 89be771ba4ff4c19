"""serve_load.py's comparison: Serve's overhead against the floor measured apart and against the
replica's own model time for the same requests, and batching's speed-up at the largest client count."""

from benchmark_scripts import load_benchmark


def _cell(clients: int, rps: float, p50: float, model_ms: float | None) -> dict:
    server = {"batch_size": 1.0, "model_ms": model_ms} if model_ms is not None else {}
    return {"clients": clients, "requests_per_second": rps, "p50_ms": p50, "server_p50": server}


def test_overhead_is_reported_against_the_floor_and_against_the_replicas_model_time():
    # The H200 run of 2026-12-04: the served model call (102.65 ms) ran faster than the floor (118.24).
    measured = {
        "batched": {"imagine": [_cell(1, 7.0, 142.19, 122.7), _cell(32, 101.9, 288.2, 70.5)]},
        "unbatched": {"imagine": [_cell(1, 8.3, 120.73, 102.65), _cell(32, 16.6, 1820.5, 60.0)]},
    }
    out = load_benchmark("serve_load").compare(measured, {"imagine": {"p50_ms": 118.24}}, [1, 32])["imagine"]
    assert out["serve_overhead_p50_ms"] == 2.49
    assert out["serve_overhead_vs_replica_model_p50_ms"] == 18.08
    assert out["batching_speedup_at_32_clients"] == round(101.9 / 16.6, 2)


def test_without_server_timing_only_the_floor_figure_is_given():
    measured = {
        "batched": {"encode": [_cell(1, 12.0, 80.0, None), _cell(32, 90.0, 300.0, None)]},
        "unbatched": {"encode": [_cell(1, 12.0, 82.0, None), _cell(32, 15.0, 2000.0, None)]},
    }
    out = load_benchmark("serve_load").compare(measured, {"encode": {"p50_ms": 55.0}}, [1, 32])["encode"]
    assert out["serve_overhead_p50_ms"] == 27.0
    assert "serve_overhead_vs_replica_model_p50_ms" not in out
