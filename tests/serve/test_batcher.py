"""Batcher: the next batch is what queued while the model ran; answers reach their own callers."""

from __future__ import annotations

import asyncio

import pytest

from aime.serve.batcher import Batcher


class SlowModel:
    """Doubles each item after ``seconds``; records the batches it was given."""

    def __init__(self, seconds: float = 0.05, fail_on: int | None = None):
        self.seconds, self.fail_on = seconds, fail_on
        self.batches: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.seconds)
        if self.fail_on in items:
            raise ValueError(f"cannot take {self.fail_on}")
        return [2 * i for i in items]


def test_batches_grow_with_the_queue_and_answers_reach_their_callers():
    model = SlowModel()

    async def scenario() -> list[int]:
        batcher = Batcher(model, max_batch_size=8, wait_timeout_s=0.0)
        first = asyncio.ensure_future(batcher(0))
        await asyncio.sleep(0.01)  # the model is busy with item 0 while 20 more arrive
        return [await first, *await asyncio.gather(*(batcher(i) for i in range(1, 21)))]

    assert asyncio.run(scenario()) == [2 * i for i in range(21)]
    # Item 0 alone, then the 20 that queued meanwhile in full batches: not one call per arrival.
    assert [len(b) for b in model.batches] == [1, 8, 8, 4]
    assert sorted(i for b in model.batches for i in b) == list(range(21))


def test_a_lone_request_waits_at_most_the_timeout_for_company():
    model = SlowModel(seconds=0.0)

    async def scenario() -> float:
        batcher = Batcher(model, max_batch_size=8, wait_timeout_s=0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher(3) == 6
        return loop.time() - started

    assert 0.04 <= asyncio.run(scenario()) < 1.0
    assert model.batches == [[3]]


def test_max_batch_size_one_runs_every_request_alone():
    model = SlowModel(seconds=0.01)

    async def scenario() -> list[int]:
        batcher = Batcher(model, max_batch_size=1, wait_timeout_s=0.05)
        return list(await asyncio.gather(*(batcher(i) for i in range(5))))

    assert asyncio.run(scenario()) == [0, 2, 4, 6, 8]
    assert model.batches == [[i] for i in range(5)]


def test_a_failed_batch_fails_its_callers_only_and_serving_goes_on():
    model = SlowModel(fail_on=1)

    async def scenario() -> tuple[list, int]:
        batcher = Batcher(model, max_batch_size=4, wait_timeout_s=0.02)
        answers = await asyncio.gather(*(batcher(i) for i in range(3)), return_exceptions=True)
        return answers, await batcher(5)

    answers, later = asyncio.run(scenario())
    assert all(isinstance(a, ValueError) and "cannot take 1" in str(a) for a in answers), answers
    assert later == 10


def test_a_cancelled_caller_is_left_out_of_its_batch():
    model = SlowModel()

    async def scenario() -> int:
        batcher = Batcher(model, max_batch_size=8, wait_timeout_s=0.0)
        busy = asyncio.ensure_future(batcher(0))
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(batcher(1))
        await asyncio.sleep(0)
        gone.cancel()
        stays = await batcher(2)
        await busy
        return stays

    assert asyncio.run(scenario()) == 4
    assert model.batches == [[0], [2]]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        Batcher(SlowModel(), max_batch_size=0, wait_timeout_s=0.0)


def test_batchers_of_one_model_take_turns_and_batch_what_queued_meanwhile():
    """Two routes on one model: while one route's call runs, the other's requests queue and then go
    as one batch, not one at a time behind it."""
    model = SlowModel()

    async def scenario() -> None:
        lock = asyncio.Lock()
        imagine = Batcher(model, max_batch_size=8, wait_timeout_s=0.0, model_lock=lock)
        encode = Batcher(model, max_batch_size=8, wait_timeout_s=0.0, model_lock=lock)
        busy = asyncio.ensure_future(imagine(100))
        await asyncio.sleep(0.01)  # imagine's call runs; five encode requests arrive one by one
        later = []
        for i in range(5):
            later.append(asyncio.ensure_future(encode(i)))
            await asyncio.sleep(0.005)
        assert await asyncio.gather(busy, *later) == [200, 0, 2, 4, 6, 8]

    asyncio.run(scenario())
    assert model.batches == [[100], [0, 1, 2, 3, 4]]


def test_the_ingress_admits_what_the_model_replicas_hold():
    from aime.serve.app import INGRESS_PROBE_ROOM, ingress_options
    from aime.serve.config import serve_config

    one = ingress_options(serve_config({"checkpoint": "x"}))
    assert one == {"num_replicas": 1, "max_ongoing_requests": 64 + INGRESS_PROBE_ROOM}
    args = {"checkpoint": "x", "max_ongoing_requests": 50, "max_replicas": 2, "ingress_replicas": 3}
    three = ingress_options(serve_config(args))
    assert three == {"num_replicas": 3, "max_ongoing_requests": 34 + INGRESS_PROBE_ROOM}  # 3 x 34 >= 100
