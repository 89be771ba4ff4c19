"""The worker's start-up helpers: the first batch fetched in a thread, the phase clock."""

from __future__ import annotations

import pstats
import threading
import time

import pytest

from aime.train.driver import describe_startup, startup_breakdown
from aime.train.startup import FirstBatchPrefetch, StartupClock


def test_the_first_batch_is_fetched_before_iteration_and_the_stream_is_unchanged():
    fetched_in: list[str] = []
    first_taken = threading.Event()

    def batches():
        fetched_in.append(threading.current_thread().name)
        first_taken.set()
        yield 0
        fetched_in.append(threading.current_thread().name)
        yield from range(1, 5)

    made_in: list[str] = []

    def make_batches():  # the stream's set-up (Ray Data's actors) happens in the thread too
        made_in.append(threading.current_thread().name)
        return batches()

    prefetch = FirstBatchPrefetch(make_batches)
    assert first_taken.wait(timeout=10), "the first batch was not fetched before iterating"
    assert list(prefetch) == [0, 1, 2, 3, 4]
    assert made_in == ["aime-first-batch"]
    assert fetched_in == ["aime-first-batch", threading.current_thread().name]


def test_a_failing_or_empty_stream_is_seen_by_the_caller():
    def failing():
        raise OSError("store unreadable")
        yield  # pragma: no cover

    prefetch = FirstBatchPrefetch(failing)
    with pytest.raises(OSError, match="store unreadable"):
        prefetch.wait()

    def unreadable_store():
        raise FileNotFoundError("no episodes under replay.root")

    with pytest.raises(FileNotFoundError, match="no episodes"):
        list(FirstBatchPrefetch(unreadable_store))
    assert list(FirstBatchPrefetch(lambda: iter([]))) == []


def test_the_clock_marks_phases_in_order_and_the_driver_splits_the_time_before_the_loop():
    clock = StartupClock()
    time.sleep(0.05)
    clock.mark("engine")
    clock.mark("first_step")
    clock.overlapped["stream_ready"] = 1.25
    metrics = clock.metrics()
    assert list(clock.phases) == ["engine", "first_step"] and clock.phases["engine"] >= 0.05
    # This process was created before the clock, and not in the future (psutil's creation time).
    assert clock.started_at - 3600 < clock.process_started_at <= clock.started_at
    began = clock.started_at
    report = {"time": began + 3.0, **metrics, "startup/process_started_at": began - 1.5}
    breakdown = startup_breakdown(report, started=began - 2.5, launched=began - 2.0)
    phases = ["driver", "worker_spawn", "worker_init", "engine", "first_step"]
    assert list(breakdown) == ["total", *phases, "overlapped_stream_ready"]
    assert breakdown["overlapped_stream_ready"] == 1.2  # not a phase: the prefetch thread's
    assert [breakdown[k] for k in ("total", "driver", "worker_spawn", "worker_init")] == [5.5, 0.5, 0.5, 1.5]
    assert breakdown["engine"] == round(clock.phases["engine"], 1)
    # A worker process Ray had started before fit(): no spawn time, its whole start is worker_init.
    early = startup_breakdown({**report, "startup/process_started_at": began - 60}, began - 2.5, began - 2.0)
    assert (early["worker_spawn"], early["worker_init"]) == (0.0, 2.0)
    shown = {"driver": 0.4, "worker_spawn": 20.0, "engine": 9.2, "first_step": 30.6}
    line = describe_startup({"total": 62.4, **shown, "overlapped_stream_ready": 21.7})
    assert line == (
        "first training step 62 s after the trainer started "
        "(driver 0 s, worker spawn 20 s, engine 9 s, first step 31 s; "
        "the stream's first batch was ready 22 s into the worker, in a thread)"
    )


def _busy_start_up() -> int:
    return sum(i * i for i in range(200_000))


def test_a_profiled_clock_writes_what_the_start_up_was_made_of(tmp_path):
    clock = StartupClock(tmp_path / "profile" / "startup_rank0")
    _busy_start_up()
    clock.mark("engine")
    clock.finish()
    _busy_start_up()  # after the first step: not in the profile
    clock.finish()  # a second call changes nothing
    stats = pstats.Stats(str(tmp_path / "profile" / "startup_rank0.pstats"))
    calls = {name: row[0] for (_, _, name), row in stats.stats.items()}  # type: ignore[attr-defined]
    assert calls["_busy_start_up"] == 1
    report = (tmp_path / "profile" / "startup_rank0.txt").read_text()
    assert "=== by cumulative time ===" in report and "=== by own time ===" in report
    assert "_busy_start_up" in report
    # Without a destination the clock profiles nothing and writes nothing.
    plain = StartupClock()
    plain.finish()
    written = sorted(p.name for p in (tmp_path / "profile").iterdir())
    assert written == ["startup_rank0.pstats", "startup_rank0.txt"]
