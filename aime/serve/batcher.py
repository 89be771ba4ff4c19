"""Dynamic batching that forms the next batch only when the model is free to run it.

    callers --await batcher(item)--> queue --one loop: wait for the model (a lock the batchers of one
    model share), then take what is queued (up to max_batch_size; up to wait_timeout_s more for
    stragglers)--> run(batch) --> each caller's answer

While a batch runs, new requests queue; the next batch is everything that queued meanwhile. Under load
batches grow to what the model's speed calls for, and a lone request waits at most wait_timeout_s
once the model is free.

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
        model_lock: asyncio.Lock | None = None,
    ):
        """``model_lock``: shared by batchers whose ``run`` uses one model, so each forms its batch
        when the model is free, not while another batcher's call runs."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.wait_timeout_s = wait_timeout_s
        self.model_lock = model_lock or asyncio.Lock()
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
            first = await self._queue.get()
            async with self.model_lock:  # the model is free: what queued meanwhile joins ``first``
                batch = await self._fill([first])
                waiting = [(item, answer) for item, answer in batch if not answer.done()]  # not cancelled
                if waiting:
                    await self._answer(waiting)

    async def _answer(self, waiting: list[tuple[Item, asyncio.Future[R]]]) -> None:
        """Run one batch; each caller gets its result, or the batch's error (the loop goes on)."""
        try:
            results = await self.run([item for item, _ in waiting])
            if len(results) != len(waiting):
                raise RuntimeError(f"run returned {len(results)} results for {len(waiting)} items")
        except Exception as error:
            for _, answer in waiting:
                if not answer.done():
                    answer.set_exception(error)
            return
        except BaseException:  # the loop cancelled (shutdown): no caller is left waiting forever
            for _, answer in waiting:
                answer.cancel()
            raise
        for (_, answer), result in zip(waiting, results, strict=True):
            if not answer.done():
                answer.set_result(result)

    async def _fill(
        self, batch: list[tuple[Item, asyncio.Future[R]]]
    ) -> list[tuple[Item, asyncio.Future[R]]]:
        """``batch`` plus everything queued (up to max_batch_size), waiting up to wait_timeout_s for
        more."""
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
