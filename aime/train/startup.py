"""A training worker's start-up: the first batch fetched while the engine is built, and where the
seconds to the first step went.

Before the first step a worker builds the DeepSpeed engine (model, optimizer, compilation set-up),
restores a checkpoint when resuming, and waits for its replay stream's first batch (Ray Data starts
the sampler actors then). The stream does not depend on the engine, only on the step it starts
from, so ``FirstBatchPrefetch`` sets it up and fetches its first batch in a thread started before
the engine is built: the stream's waits (Ray Data's actors starting) overlap the engine's imports.
``StartupClock`` times the phases; the first step's report carries them (``startup/*``) and the
driver prints them beside "first training step N s after the trainer started".

With ``train.profile_startup`` the clock also runs cProfile over the worker's thread from its start to
the end of the first step and writes ``<run_dir>/profile/startup_rank<R>.pstats`` (for ``python -m
pstats`` or snakeviz) and ``startup_rank<R>.txt`` (the functions by cumulative and by own time): what
the phases above are made of. The profiler slows Python down: a profiled run's phases are still
reported, but are not comparable with an unprofiled run's.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aime import metrics as M


class FirstBatchPrefetch:
    """Iterates the batches ``make_batches()`` returns, unchanged; the call and the first batch are
    made in a thread started at once.

    Iterating waits for that thread; an error it met is raised there, in the caller's thread.
    """

    def __init__(self, make_batches: Callable[[], Iterator[Any]]) -> None:
        self._make_batches = make_batches
        self._batches: Iterator[Any] = iter(())
        self._first: list[Any] = []
        self._error: BaseException | None = None
        self._started = time.perf_counter()
        self.ready_after: float | None = None  # seconds from here to the first batch (or the end)
        self._thread = threading.Thread(target=self._fetch, name="aime-first-batch", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            self._batches = self._make_batches()
            self._first.extend(_first_or_nothing(self._batches))
        except BaseException as error:  # re-raised in the iterating thread
            self._error = error
        self.ready_after = time.perf_counter() - self._started

    def wait(self) -> None:
        """Block until the first batch is here (or the stream has ended or failed)."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __iter__(self) -> Iterator[Any]:
        self.wait()
        yield from self._first
        yield from self._batches


def _first_or_nothing(batches: Iterator[Any]) -> list[Any]:
    for batch in batches:
        return [batch]
    return []


class StartupClock:
    """Seconds per start-up phase, in the order marked, plus the wall-clock times at which the worker's
    process was created and its loop began (the driver splits the time before the loop by them)."""

    def __init__(self, profile_to: Path | None = None) -> None:
        self.started_at = time.time()
        self.process_started_at = _process_created_at()
        self._last = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.overlapped: dict[str, float] = {}  # seconds of work in other threads, not phases
        self._profile_to = profile_to  # <dir>/<name>: cProfile from here to ``finish``
        self._profiler = cProfile.Profile() if profile_to is not None else None
        if self._profiler is not None:
            self._profiler.enable()

    def mark(self, phase: str) -> None:
        """The phase that has just ended: the seconds since the previous mark (or the start)."""
        now = time.perf_counter()
        self.phases[phase] = now - self._last
        self._last = now

    def finish(self) -> None:
        """Start-up is over (the first step is done): stop the profiler, if any, and write its files."""
        if self._profiler is None or self._profile_to is None:
            return
        self._profiler.disable()
        self._profile_to.parent.mkdir(parents=True, exist_ok=True)
        self._profiler.dump_stats(str(self._profile_to.with_suffix(".pstats")))
        self._profile_to.with_suffix(".txt").write_text(_profile_report(self._profiler))
        self._profiler = None

    def metrics(self) -> dict[str, float]:
        """``startup/<phase>`` seconds, ``startup/worker_started_at`` and ``startup/process_started_at``
        (Unix times)."""
        out = {M.STARTUP + phase: round(seconds, 3) for phase, seconds in self.phases.items()}
        out |= {M.STARTUP_OVERLAPPED + name: round(seconds, 3) for name, seconds in self.overlapped.items()}
        return out | {
            M.STARTUP_WORKER_STARTED_AT: self.started_at,
            M.STARTUP_PROCESS_STARTED_AT: self.process_started_at,
        }


def _process_created_at() -> float:
    """Unix time this process was created: for a Ray Train worker, when Ray spawned its actor."""
    import psutil

    return float(psutil.Process().create_time())


def _profile_report(profiler: cProfile.Profile, lines: int = 60) -> str:
    """The profile as text: the functions by cumulative time, then by their own time."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    for order, title in (("cumulative", "cumulative time"), ("tottime", "own time")):
        out.write(f"=== by {title} ===\n")
        stats.sort_stats(order).print_stats(lines)
    return out.getvalue()
