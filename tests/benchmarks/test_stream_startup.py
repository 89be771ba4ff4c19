"""benchmarks/stream_startup.py: one run from a checkout, in a fresh process with its own local Ray,
builds the preset's stream over a small synthetic store and reports where its seconds went."""

from benchmark_scripts import load_benchmark

stream_startup = load_benchmark("stream_startup")
refs = load_benchmark("refs")


def test_one_run_builds_the_stream_and_times_its_first_batch(tmp_path):
    store = stream_startup.synthetic_store(tmp_path / "store", 2)
    small = [
        "ray.num_cpus=4",
        "train.steps=3",
        "train.batch_size=2",
        "train.seq_len=8",
        "train.sampler_workers=1",
    ]
    run = stream_startup.one_run(refs.REPO, store, small)
    assert set(run) == {"stream_seconds", "first_batch_seconds", "process_seconds"}
    assert 0 < run["stream_seconds"] <= run["first_batch_seconds"] < run["process_seconds"]
