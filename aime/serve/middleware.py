"""The ingress's outer layer, as plain ASGI (no Starlette ``BaseHTTPMiddleware``, whose task group and
body streams cost about half a millisecond a request): request ids, the body limits checked before
the body is read, one JSON 500 for any unexpected failure, the ingress's own time in
``Server-Timing``, and the per-route request counter.

    request --x-request-id (the client's, or a new one) into scope["state"]-->
            POST: content type (415), Content-Length present (411) and within the limit (413)
            --the app--> response; ``app;dur`` appended where the app reported a model call
            (an exception before the response started: 500 {"error", "request_id"}, traceback in the log)
            --> aime_serve_requests{route, status}
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aime.run import ray_metrics
from aime.serve.schemas import ErrorResponse

log = logging.getLogger(__name__)

REQUEST_ID = "x-request-id"
SERVER_TIMING = "server-timing"


class LimitsAndErrors:
    """ASGI middleware around the API (``api.add_middleware(LimitsAndErrors, max_body_bytes=...)``)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get(REQUEST_ID) or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id
        started = time.perf_counter()
        status, responded = 500, False

        async def timed_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                answer = MutableHeaders(scope=message)
                if SERVER_TIMING in answer:  # a model answer: add the ingress's own time
                    answer[SERVER_TIMING] += f", app;dur={(time.perf_counter() - started) * 1e3:.1f}"
            await send(message)

        problem = body_problem(headers, self.max_body_bytes) if scope["method"] == "POST" else None
        try:
            if problem is not None:
                await error_response(*problem, request_id)(scope, receive, timed_send)
            else:
                await self.app(scope, receive, timed_send)
        except Exception:
            log.exception("request %s %s failed (request id %s)", scope["method"], scope["path"], request_id)
            if responded:  # the response had started: nothing more can be sent
                raise
            message = "internal error while serving the request; see the replica log"
            await error_response(500, message, request_id)(scope, receive, timed_send)
        finally:
            ray_metrics.served(route_of(scope), status)


def route_of(scope: Scope) -> str:
    """The route the router matched ("/v1/encode"); "other" where none was (unknown paths, bodies
    refused before routing), so a scanner's paths cannot grow the metric's label set."""
    return str(getattr(scope.get("route"), "path", "other"))


def body_problem(headers: Headers, max_bytes: int) -> tuple[int, str] | None:
    """(status, message) for a POST body the API will not read; None for one it will."""
    content_type = headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        return 415, f"content-type {content_type or '(none)'!r}: send application/json"
    length = headers.get("content-length")
    if length is None:
        return 411, "a Content-Length header is required (chunked bodies are not accepted)"
    if not length.isdigit() or int(length) > max_bytes:
        return 413, f"body of {length} bytes exceeds the limit of {max_bytes} (max_body_bytes)"
    return None


def error_response(
    status: int, message: str, request_id: str, detail: list[dict[str, Any]] | None = None
) -> Response:
    body = ErrorResponse(error=message, request_id=request_id, detail=detail)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers={REQUEST_ID: request_id}
    )
