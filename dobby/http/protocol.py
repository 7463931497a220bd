"""The HTTP/1.1 connection protocol dobby serves with: uvicorn's httptools protocol, plus the one bound it lacks.

uvicorn 0.55 bounds an idle keep-alive connection (`timeout_keep_alive`, armed after each response) and nothing
else: a connection that sends nothing after it opens, or sends its header block a line at a time, is kept for
ever (any byte cancels the keep-alive timer). This subclass gives every request's header block a deadline
counted from the connection's opening (the first request) or from the first byte after the previous response
(every later one): past it, a partly sent header block gets a 408 and the connection is closed; a connection that
sent nothing is just closed. The moment the deadline counts from is handed to the app in the scope
(`dobby.request_started`, `time.monotonic()`), so the edge middleware bounds the body by the same clock (SPEC §16).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

STARTED_KEY = "dobby.request_started"
HEADER_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"x-content-type-options: nosniff\r\ncache-control: no-store\r\ncontent-length: %d\r\n"
    b"\r\n%s"
)
HEADER_TIMEOUT_BODY = (
    b'{"error":{"code":"request_timeout","message":"the request headers did not arrive in time","details":[]}}'
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with a header-block deadline of `request_timeout` seconds."""

    def __init__(self, *args: Any, request_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self._started = 0.0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._heard = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first byte of a request after an idle keep-alive: its clock starts now
        self._heard = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        if self._header_deadline is None:
            self._arm()  # a pipelined request, begun while the one before it is still being answered
        super().on_message_begin()
        self.scope[STARTED_KEY] = self._started  # type: ignore[literal-required]

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._started = time.monotonic()
        self._header_deadline = self.loop.call_later(self.request_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._heard and not answering:  # never write into another request's answer
            self.transport.write(HEADER_TIMEOUT % (len(HEADER_TIMEOUT_BODY), HEADER_TIMEOUT_BODY))
        self.transport.close()
