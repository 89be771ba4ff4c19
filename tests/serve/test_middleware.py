"""The ingress's outer layer (aime/serve/middleware.py) on the real FastAPI app, in-process: a failure
inside the model is a JSON 500 with the request's id and no traceback (the traceback goes to the
log), a model answer carries the ingress's own time, and the limits answer before the app reads."""

from __future__ import annotations

import asyncio
import logging

import httpx
import numpy as np

from aime.serve.codec import encode_png
from aime.serve.config import ServeConfig
from aime.serve.http import create_api
from aime.serve.model import Served

S, A = 16, 6


class FailingImagination:
    """A backend whose encode answers and whose imagine raises, as a model bug would."""

    async def info(self):
        return {
            "checkpoint": "ckpt",
            "step": 1,
            "config_hash": "h",
            "task": "cheetah-run",
            "image_size": S,
            "action_dim": A,
            "activations": ["z"],
            "concepts": [],
            "lens_pack": None,
            "device": "cpu",
        }

    async def encode(self, item):
        return Served({"z": np.zeros((len(item.frames), 2), np.float32)}, batch_size=1, model_ms=1.5)

    async def imagine(self, item):
        raise RuntimeError("a bug in the model: secret internals")

    async def concepts(self, item):
        raise AssertionError("not called")


def _post(path: str, body: dict | bytes, **headers: str) -> httpx.Response:
    api = create_api(FailingImagination(), ServeConfig(max_body_bytes=4096))

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if isinstance(body, bytes):
                return await client.post(path, content=body, headers=headers)
            return await client.post(path, json=body, headers=headers)

    return asyncio.run(send())


def _frames(n: int) -> list[str]:
    return [encode_png(np.zeros((S, S, 3), np.uint8))] * n


def test_a_model_failure_is_a_500_with_the_request_id_and_the_traceback_only_in_the_log(caplog):
    body = {"context_frames": _frames(2), "context_actions": [[0.0] * A] * 2, "future_actions": [[0.0] * A]}
    with caplog.at_level(logging.ERROR, logger="aime.serve.middleware"):
        answer = _post("/v1/imagine", body, **{"x-request-id": "req-42"})
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "req-42"
    assert answer.json() == {
        "error": "internal error while serving the request; see the replica log",
        "request_id": "req-42",
    }
    assert "secret internals" not in answer.text and "Traceback" not in answer.text
    assert "req-42" in caplog.text and "secret internals" in caplog.text  # the replica's log has it all


def test_a_model_answer_carries_the_ingress_time():
    answer = _post("/v1/encode", {"frames": _frames(3), "actions": [[0.0] * A] * 3})
    assert answer.status_code == 200, answer.text
    timing = dict(part.strip().split(";dur=") for part in answer.headers["server-timing"].split(","))
    assert set(timing) == {"model", "wait", "app"} and float(timing["app"]) >= float(timing["model"]) - 1.5
    assert answer.json()["steps"] == 3


def test_limits_answer_before_the_body_is_read():
    too_big = _post("/v1/encode", b"{" + b" " * 5000 + b"}", **{"content-type": "application/json"})
    assert too_big.status_code == 413 and "max_body_bytes" in too_big.json()["error"]
    wrong_type = _post("/v1/encode", b"frames=1", **{"content-type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415 and "application/json" in wrong_type.json()["error"]
