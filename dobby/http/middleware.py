"""What dobby does around every request, as one pure-ASGI layer: the request id, the body size limit, backpressure
on /api/v1 and the request metrics. One layer rather than four: each layer is a coroutine and a wrapped `send`
per request, and at intake rates those were a tenth of the work."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
DRAIN_LIMIT = 8 * MAX_BODY_BYTES
TOO_LARGE = (
    b'{"error":{"code":"body_too_large","message":"the body is larger than '
    + str(MAX_BODY_BYTES).encode()
    + b' bytes","details":[]}}'
)


class BodyTooLargeError(Exception):
    """Raised from `receive` once a body passes the limit; EdgeMiddleware turns it into the 413."""


REPEATED = b'{"error":{"code":"invalid_input","message":"a query parameter is given more than once","details":[]}}'
BACKPRESSURE = b'{"error":{"code":"backpressure","message":"too many requests in flight; retry shortly","details":[]}}'


class EdgeMiddleware:
    """In order, as a request meets them: a sane X-Request-ID is echoed or one is issued (`<process token>-<n>`,
    unique and cheaper than a uuid4) and sent back on every answer; bodies over the limit are refused with a 413
    the client can read (by Content-Length before the app runs, or when a streamed body passes the limit, after
    draining what is left up to 8 MiB); at most `gate.limit` /api/v1 requests are in flight, beyond that a 503
    with Retry-After; and every request's duration is observed by route template, method and status."""

    def __init__(
        self, app: ASGIApp, histogram: Histogram, gate: BackpressureState, limit: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.histogram = histogram
        self.gate = gate
        self.limit = limit
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming
            if 0 < len(incoming) <= 128 and incoming.isprintable()
            else f"{self._prefix}-{next(self._counter):x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status, answered, received = 500, False, 0

        async def answering(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError()
            return message

        gate = self.gate
        gated = scope["path"].startswith("/api/v1/")
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                await _refuse(receive, answering, 0)
            elif gated and _repeated_parameter(scope["query_string"]):
                await _answer(answering, 422, REPEATED, [])
            elif gated and gate.in_flight >= gate.limit:
                gate.refused_at = time.monotonic()
                await _answer(answering, 503, BACKPRESSURE, [(b"retry-after", b"1")])
            else:
                gate.in_flight += gated
                try:
                    await self.app(scope, counting, answering)
                except BodyTooLargeError:
                    if answered:  # nothing sensible is left to send
                        raise
                    await _refuse(receive, answering, received)
                finally:
                    gate.in_flight -= gated
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)


def _repeated_parameter(query: bytes) -> bool:
    """Whether a query names a parameter twice: every parameter of the API is one value (SPEC §4: the contract)."""
    if not query:
        return False
    names = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return len(names) != len(set(names))


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(receive: Receive, send: Send, already: int) -> None:
    """Read and drop what is left of the body (up to DRAIN_LIMIT in all), then answer 413."""
    drained, more = already, True
    while more and drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        more = message.get("more_body", False)
    await _answer(send, 413, TOO_LARGE, [(b"connection", b"close")] if more else [])


class BackpressureState:
    """How many /api/v1 requests are in flight, and when one was last refused (shown by /ready)."""

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused_at = -1e9

    @property
    def saturated(self) -> bool:
        return self.in_flight >= self.limit or time.monotonic() - self.refused_at < 5.0
