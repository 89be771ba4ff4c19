"""Dynamic batching that forms the next batch only when the model is free to run it.

    callers --await batcher(item)--> queue --one loop: wait for the model, then take what is queued
    (up to max_batch_size; up to wait_timeout_s more for stragglers)--> run(batch) --> each caller's answer

While a batch runs, new requests queue; the next batch is everything that queued meanwhile. Under load
batches grow to what the model's speed calls for, and a lone request waits at most wait_timeout_s.

Why not ``@serve.batch``: since ray-project/ray#53096 (2025) it forms batches as requests arrive
and queues the formed batches on a semaphore while an earlier one runs. Batches then hold what came in
one wait window, not what queued during a model call: under 8-32 clients on one replica the median
batch was 1 and batching gained nothing (benchmarks/serve_load.py, 2026-12-03). No Ray in here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
R = TypeVar("R")


class Batcher(Generic[Item, R]):
    """``await batcher(item)`` answers one item through ``run(batch)``, batched with its neighbours;
    ``run`` returns one result per item, in order. Create it in the event loop that calls it."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[list[R]]],
        max_batch_size: int,
        wait_timeout_s: float,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.wait_timeout_s = wait_timeout_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[R]]] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> R:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._serve_batches())
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, answer))
        return await answer

    async def _serve_batches(self) -> None:
        while True:
            batch = await self._next_batch()
            waiting = [(item, answer) for item, answer in batch if not answer.done()]  # not cancelled
            if not waiting:
                continue
            try:
                results = await self.run([item for item, _ in waiting])
                if len(results) != len(waiting):
                    raise RuntimeError(f"run returned {len(results)} results for {len(waiting)} items")
            except Exception as error:  # every caller of this batch gets it; the loop goes on
                for _, answer in waiting:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (_, answer), result in zip(waiting, results, strict=True):
                if not answer.done():
                    answer.set_result(result)

    async def _next_batch(self) -> list[tuple[Item, asyncio.Future[R]]]:
        """Everything queued (up to max_batch_size), waiting up to wait_timeout_s for more once the
        first item is in."""
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.wait_timeout_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch
