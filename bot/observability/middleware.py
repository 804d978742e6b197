"""The web app's request ids and request metrics.

``RequestContext`` is plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: it
neither wraps the body in streams nor starts tasks, so the webhook path pays only a dict
look-up, two context variables and two metric updates per request.
"""

from __future__ import annotations

import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.observability import logs, metrics
from bot.observability.metrics import Metrics

HEADER = b"x-request-id"
# What we accept from a client or proxy: a UUID, a hex or base64url id, an AWS trace id.
# Anything else (newlines, spaces, 10 kB of junk) is replaced, never echoed or logged.
SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:=;-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The client's X-Request-ID when it is a sane value, else None."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if SAFE_REQUEST_ID.fullmatch(value) else None
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/s/{code}``), never the path itself."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContext:
    """Outermost middleware: a request id in the logs and the response, and one count and
    one latency observation per request, labelled by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Label look-ups cost more than the updates; the label sets are few and bounded.
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope["headers"]) or uuid.uuid4().hex
        id_header = (HEADER, request_id.encode("ascii"))
        status = 500  # if the app raises before answering, the server error page is a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        id_token = logs.request_id.set(request_id)
        metrics_token = metrics.use(self.metrics)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            key = (method, route_template(scope), str(status))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    self.metrics.http_requests.labels(*key),
                    self.metrics.http_latency.labels(*key[:2]),
                )
            series[0].inc()
            series[1].observe(elapsed)
            metrics.restore(metrics_token)
            logs.request_id.reset(id_token)
