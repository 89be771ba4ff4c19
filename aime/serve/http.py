"""The HTTP API: a FastAPI app over a model backend, with limits, validation and errors for people.

    request --limits (middleware.py: 415 content type, 411/413 body size)--> pydantic body (422: field
            + problem)
            --checks against the model (422: image size, action dim, lengths, limits)--> backend
            --> JSON response; any other failure: 500 {"error", "request_id"}, traceback in the log
    every response --> aime_serve_requests{route, status} (aime.run.ray_metrics, from middleware.py)
    model answers --> Server-Timing: model;dur (the batched call), wait;dur (queue, batching, transport),
                      app;dur (all of it in the ingress); X-Aime-Batch-Size: requests in that call

Serve gives every request an ``x-request-id`` (echoed in its response header); error bodies carry it
too, and the logs name it. Nothing from a request is unpickled: bodies are JSON and
frames PNG or integer lists. The app knows the model only through ``Backend`` (``app.py`` hands it
the Serve handle of the model deployment).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from aime.serve.codec import FrameError, encode_png, frames_to_array
from aime.serve.config import ServeConfig
from aime.serve.middleware import SERVER_TIMING, LimitsAndErrors, error_response
from aime.serve.model import EncodeItem, ImagineItem, Served
from aime.serve.schemas import (
    ConceptScores,
    ConceptsResponse,
    EncodeRequest,
    EncodeResponse,
    ErrorResponse,
    ImagineRequest,
    ImagineResponse,
    ModelInfo,
)

BATCH_SIZE = "x-aime-batch-size"
R = TypeVar("R")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 411, 413, 415, 422, 500, 503)
}


class Backend(Protocol):
    async def info(self) -> dict[str, Any]: ...
    async def encode(self, item: EncodeItem) -> Served[dict[str, np.ndarray]]: ...
    async def imagine(self, item: ImagineItem) -> Served[np.ndarray]: ...
    async def concepts(self, item: EncodeItem) -> Served[dict[str, dict[str, Any]]]: ...


class RequestProblem(Exception):
    """A request the model cannot take; answered with ``status`` and the message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_api(backend: Backend, cfg: ServeConfig) -> FastAPI:
    api = FastAPI(
        title="aime world model",
        version="1",
        description="Encode observations, imagine futures and read concepts with a trained AIME world model.",
    )
    model_info: dict[str, Any] = {}

    async def info() -> dict[str, Any]:
        if not model_info:
            model_info.update(await backend.info())
        return model_info

    api.add_middleware(LimitsAndErrors, max_body_bytes=cfg.max_body_bytes)
    api.exception_handler(RequestValidationError)(_invalid_body)
    api.exception_handler(RequestProblem)(_problem)
    api.include_router(_health_routes(info))

    @api.get("/v1/model", response_model=ModelInfo, tags=["model"], responses=ERRORS)
    async def model() -> ModelInfo:
        """The served checkpoint: step, config hash, task, image size, action dimension, features."""
        data = await info()
        limits = {
            "max_frames": cfg.max_frames,
            "max_horizon": cfg.max_horizon,
            "max_body_bytes": cfg.max_body_bytes,
        }
        return ModelInfo(**{k: v for k, v in data.items() if k in ModelInfo.model_fields}, limits=limits)

    @api.post("/v1/encode", response_model=EncodeResponse, tags=["model"], responses=ERRORS)
    async def encode(body: EncodeRequest, response: Response) -> EncodeResponse:
        """Per-step activations (z, h, h_prev, embed, c, attention_state) of an observed sequence."""
        item = _encode_item(body, await info(), cfg)
        features = await _timed(response, backend.encode(item))
        return EncodeResponse(
            steps=len(item.frames), activations={k: v.tolist() for k, v in features.items()}
        )

    @api.post("/v1/imagine", response_model=ImagineResponse, tags=["model"], responses=ERRORS)
    async def imagine(body: ImagineRequest, response: Response) -> ImagineResponse:
        """Predicted frames for future actions, after observing context frames; seeded."""
        item = _imagine_item(body, await info(), cfg)
        predicted = await _timed(response, backend.imagine(item))  # (H, S, S, 3) uint8
        return ImagineResponse(
            horizon=len(predicted), seed=body.seed, frames=[encode_png(f) for f in predicted]
        )

    @api.post("/v1/concepts", response_model=ConceptsResponse, tags=["model"], responses=ERRORS)
    async def concepts(body: EncodeRequest, response: Response) -> ConceptsResponse:
        """Per-step concept probabilities from the served lens pack (body as /v1/encode)."""
        spec = _with_lens_pack(await info())
        item = _encode_item(body, spec, cfg)
        scores = await _timed(response, backend.concepts(item))
        lenses = {
            name: ConceptScores(probability=s["probability"].tolist(), graduated=s["graduated"])
            for name, s in scores.items()
        }
        return ConceptsResponse(steps=len(item.frames), lens_pack=spec["lens_pack"]["name"], concepts=lenses)

    return api


async def _timed(response: Response, answer: Awaitable[Served[R]]) -> R:
    """The model's answer; its batch size and times go into the response's headers."""
    started = time.perf_counter()
    served = await answer
    wait_ms = max(0.0, (time.perf_counter() - started) * 1e3 - served.model_ms)
    response.headers[SERVER_TIMING] = f"model;dur={served.model_ms:.1f}, wait;dur={wait_ms:.1f}"
    response.headers[BATCH_SIZE] = str(served.batch_size)
    return served.value


def _health_routes(info: Callable[[], Awaitable[dict[str, Any]]]) -> APIRouter:
    """``/healthz`` (the server answers) and ``/readyz`` (the model is loaded and answers)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The HTTP server answers (the model may still be loading)."""
        return {"status": "ok"}

    @router.get("/readyz", responses=ERRORS)
    async def readyz() -> dict[str, str]:
        """The model is loaded and answers."""
        try:
            await info()
        except Exception as error:  # a replica still starting, or restarting
            raise RequestProblem(503, f"model not ready: {type(error).__name__}") from None
        return {"status": "ready"}

    return router


def _with_lens_pack(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` unchanged when a lens pack is served; else the 404 that names what is missing."""
    if not spec["concepts"]:
        raise RequestProblem(
            404,
            f"no lens pack is served with checkpoint {spec['checkpoint']}: train one with "
            "`aime lenses train` (or `aime run ... lenses.enabled=true`) and serve it with lens_pack=DIR",
        )
    return spec


def _imagine_item(body: ImagineRequest, spec: dict[str, Any], cfg: ServeConfig) -> ImagineItem:
    frames = _frames(body.context_frames, "context_frames", spec, cfg.max_frames)
    context_actions = _actions(body.context_actions, "context_actions", spec, len(frames))
    H = len(body.future_actions)
    if not 1 <= H <= cfg.max_horizon:
        raise RequestProblem(422, f"future_actions: {H} steps, expected 1..{cfg.max_horizon} (max_horizon)")
    future_actions = _actions(body.future_actions, "future_actions", spec, H)
    return ImagineItem(frames, context_actions, future_actions, body.temperature, body.seed)


def _encode_item(body: EncodeRequest, spec: dict[str, Any], cfg: ServeConfig) -> EncodeItem:
    frames = _frames(body.frames, "frames", spec, cfg.max_frames)
    T = len(frames)
    actions = _actions(body.actions, "actions", spec, T)
    if body.is_first is None:
        is_first = np.arange(T) == 0  # one episode, starting at the first frame
    elif len(body.is_first) != T:
        raise RequestProblem(422, f"is_first: {len(body.is_first)} values, expected {T} (one per frame)")
    else:
        is_first = np.asarray(body.is_first, bool)
    return EncodeItem(frames, actions, is_first)


def _frames(frames: Any, where: str, spec: dict[str, Any], limit: int) -> np.ndarray:
    try:
        array = frames_to_array(frames, where)  # (T, H, W, 3) uint8
    except FrameError as error:
        raise RequestProblem(422, str(error)) from None
    S = spec["image_size"]
    if array.shape[1:3] != (S, S):
        raise RequestProblem(
            422,
            f"{where}: {array.shape[1]}x{array.shape[2]} images, expected {S}x{S} (the model's image size)",
        )
    if len(array) > limit:
        raise RequestProblem(422, f"{where}: {len(array)} frames, at most {limit} (max_frames)")
    return array


def _actions(actions: list[list[float]], where: str, spec: dict[str, Any], steps: int) -> np.ndarray:
    A = spec["action_dim"]
    if len(actions) != steps:
        raise RequestProblem(422, f"{where}: {len(actions)} rows, expected {steps} (one per frame)")
    for t, row in enumerate(actions):
        if len(row) != A:
            raise RequestProblem(
                422, f"{where}[{t}]: {len(row)} values, expected {A} (the model's action_dim)"
            )
    return np.asarray(actions, np.float32).reshape(steps, A)


async def _invalid_body(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    # A union (frames: PNG strings or nested lists) reports a type mismatch from the branch the input
    # does not take; the other branch's errors say what is wrong.
    specific = [e for e in errors if e.get("type") not in ("string_type", "list_type")]
    detail = [_problem_of(e) for e in (specific or errors)]
    first = detail[0] if detail else {"field": "body", "message": "invalid"}
    message = f"invalid request: {first['field']}: {first['message']}"
    return error_response(422, message, request.state.request_id, detail[:10])


def _problem_of(error: dict[str, Any]) -> dict[str, str]:
    location = error.get("loc", ())[1:]  # after "body"
    if error.get("type") == "json_invalid":
        where = f" near character {location[0]}" if location else ""
        return {"field": "body", "message": f"malformed JSON{where}: {error.get('ctx', {}).get('error', '')}"}
    field = ".".join(str(p) for p in location if not str(p).startswith("list["))  # no union branch tags
    return {"field": field or "body", "message": str(error.get("msg", ""))}


async def _problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestProblem)
    return error_response(error.status, str(error), request.state.request_id)
