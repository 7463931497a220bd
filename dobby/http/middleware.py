"""What dobby does around every request, as one pure-ASGI layer: the request id and the answer's standing headers,
the body's size and time limits, backpressure on /api/v1 and the request metrics. One layer rather than five: each
layer is a coroutine and a wrapped `send` per request, and at intake rates those were a tenth of the work."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dobby.engine.kernel.errors import Violation
from dobby.http.errors import error_body
from dobby.http.protocol import STARTED_KEY

MAX_BODY_BYTES = 1024 * 1024
DRAIN_LIMIT = 8 * MAX_BODY_BYTES
BODY_TIMEOUT_SECONDS = 10.0
TOO_LARGE = (
    b'{"error":{"code":"body_too_large","message":"the body is larger than '
    + str(MAX_BODY_BYTES).encode()
    + b' bytes","details":[]}}'
)
BACKPRESSURE = b'{"error":{"code":"backpressure","message":"too many requests in flight; retry shortly","details":[]}}'
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
CLOSE = [(b"connection", b"close")]
DISCONNECTED = 499  # the client went away before its body arrived: nothing was answered (nginx's number)


class _TooLargeError(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


class EdgeMiddleware:
    """In order, as a request meets them: a sane X-Request-ID is echoed or one is issued (`<process token>-<n>`,
    unique and cheaper than a uuid4) and sent back on every answer with `nosniff` and, unless the answer says
    otherwise, `Cache-Control: no-store`; a body is read whole before anything else happens — over the size limit
    it is refused with a 413 the client can read (by Content-Length before reading, or once a streamed body passes
    the limit, after draining what is left up to 8 MiB), and when it has not all arrived `timeout` seconds after
    the request began (the protocol's clock: the connection's opening or the request's first byte) with a 408 that
    closes the connection; only then does an /api/v1 request take one of `gate.limit` in-flight slots (beyond them
    a 503 with Retry-After), so slow senders hold none; every request's duration is observed by route template,
    method and status."""

    def __init__(
        self,
        app: ASGIApp,
        histogram: Histogram,
        gate: BackpressureState,
        limit: int = MAX_BODY_BYTES,
        timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.histogram = histogram
        self.gate = gate
        self.limit = limit
        self.timeout = timeout
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
        status = 500

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                given = message.get("headers", ())
                named = {name.lower() for name, _ in given}
                extra = [id_header]
                extra += [] if b"x-content-type-options" in named else [NOSNIFF]
                extra += [] if b"cache-control" in named else [NO_STORE]
                message["headers"] = [*given, *extra]
            await send(message)

        deadline = (scope.get(STARTED_KEY) or time.monotonic()) + self.timeout
        gate = self.gate
        gated = scope["path"].startswith("/api/v1/")
        try:
            declared = headers.get(b"content-length")
            app_receive = receive
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                await _refuse(receive, answering, 0, deadline)
                return
            if (declared is not None and declared != b"0") or b"transfer-encoding" in headers:
                try:
                    body = await _read_body(receive, self.limit, deadline)
                except _TooLargeError as too_large:
                    await _refuse(receive, answering, too_large.received, deadline)
                    return
                except TimeoutError:
                    message = f"the request body did not arrive within {self.timeout:g} s".encode()
                    timed_out = b'{"error":{"code":"request_timeout","message":"' + message + b'","details":[]}}'
                    await _answer(answering, 408, timed_out, CLOSE)
                    return
                if body is None:
                    status = DISCONNECTED
                    return
                app_receive = _replaying(body, receive)
            if gated and (repeated := _repeated_parameter(scope["query_string"])):
                await _answer(answering, 422, _repeated_answer(repeated), [])
                return
            if gated and gate.in_flight >= gate.limit:
                gate.refused_at = time.monotonic()
                await _answer(answering, 503, BACKPRESSURE, [(b"retry-after", b"1")])
                return
            gate.in_flight += gated
            try:
                await self.app(scope, app_receive, answering)
            finally:
                gate.in_flight -= gated
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)


def _repeated_parameter(query: bytes) -> str | None:
    """The first parameter a query names twice, if any: every parameter of the API is one value (SPEC §4)."""
    if not query:
        return None
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


def _repeated_answer(name: str) -> bytes:
    """422 naming the repeated parameter, as every refusal names its field (SPEC §4)."""
    message = f"query parameter {name!r} is given more than once"
    detail = Violation("repeated_parameter", message, name).as_dict()
    return msgspec.json.encode(error_body("invalid_input", message, [detail]))


async def _read_body(receive: Receive, limit: int, deadline: float) -> bytes | None:
    """The whole body, once it has all arrived; None when the client went away first."""
    chunks, received = [], 0
    async with asyncio.timeout(deadline - time.monotonic()):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise _TooLargeError(received)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read already, then whatever the connection says next (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(receive: Receive, send: Send, already: int, deadline: float) -> None:
    """Read and drop what is left of the body (up to DRAIN_LIMIT in all, until the deadline), then answer 413."""
    drained, more = already, True
    try:
        async with asyncio.timeout(deadline - time.monotonic()):
            while more and drained <= DRAIN_LIMIT:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                more = message.get("more_body", False)
    except TimeoutError:
        pass
    await _answer(send, 413, TOO_LARGE, CLOSE if more else [])


class BackpressureState:
    """How many /api/v1 requests are in flight, and when one was last refused (shown by /ready)."""

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused_at = -1e9

    @property
    def saturated(self) -> bool:
        return self.in_flight >= self.limit or time.monotonic() - self.refused_at < 5.0
