"""Small pure-ASGI middleware: request ids, the body size limit, request metrics."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024


class RequestIdMiddleware:
    """Echoes a sane X-Request-ID, or issues `<process token>-<counter>` (unique, and cheaper than a uuid4)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming
            if 0 < len(incoming) <= 128 and incoming.isprintable()
            else f"{self._prefix}-{next(self._counter):x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_id)


DRAIN_LIMIT = 8 * MAX_BODY_BYTES
TOO_LARGE = (
    b'{"error":{"code":"body_too_large","message":"the body is larger than '
    + str(MAX_BODY_BYTES).encode()
    + b' bytes","details":[]}}'
)


class BodyTooLargeError(Exception):
    """Raised from `receive` once a body passes the limit; BodyLimitMiddleware turns it into the 413."""


class BodyLimitMiddleware:
    """Refuses bodies over 1 MiB with a 413 the client can read: by Content-Length before the app runs, or when a
    streamed body passes the limit. The rest of the body is read and dropped first (up to 8 MiB), so a client that
    is still sending gets the answer instead of a reset connection."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(receive, send, 0)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLargeError:
            if started:
                raise
            await _refuse(receive, send, received)


async def _refuse(receive: Receive, send: Send, already: int) -> None:
    """Read and drop what is left of the body (up to DRAIN_LIMIT in all), then answer 413."""
    drained, more = already, True
    while more and drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        more = message.get("more_body", False)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(TOO_LARGE)).encode()),
    ]
    if more:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": TOO_LARGE})


class MetricsMiddleware:
    """Observes every request's duration by route template, method and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)


class BackpressureState:
    """How many /api/v1 requests are in flight, and when one was last refused (shown by /ready)."""

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused_at = -1e9

    @property
    def saturated(self) -> bool:
        return self.in_flight >= self.limit or time.monotonic() - self.refused_at < 5.0


class BackpressureGate:
    """At most `limit` /api/v1 requests in flight; beyond that a clear 503 with Retry-After, not an unbounded queue."""

    def __init__(self, app: ASGIApp, gate: BackpressureState) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        if gate.in_flight >= gate.limit:
            gate.refused_at = time.monotonic()
            body = (
                b'{"error":{"code":"backpressure","message":"too many requests in flight; retry shortly","details":[]}}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"1"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        gate.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1
