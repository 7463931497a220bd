"""uvicorn's own HTTP protocol tests (its tests/protocols/test_http.py of 0.35.0, here suite_http.py; BSD-3-Clause,
LICENSE.md here), run against the protocol `dobby serve` uses: a uvicorn part we subclass passes the library's own
tests. tests/library/test_uvicorn_suite.py runs them in a pytest of their own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from dobby.http.protocol import BoundedHttpToolsProtocol


@pytest.fixture(autouse=True)
def propagating_uvicorn_logs() -> Iterator[None]:
    """As uvicorn's own conftest does (caplog sees only loggers that propagate), for these tests only."""
    logger = LOGGING_CONFIG["loggers"]["uvicorn"]
    before = logger.get("propagate")
    logger["propagate"] = True
    yield
    logger["propagate"] = before


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def http_protocol_cls() -> Any:
    return BoundedHttpToolsProtocol


@pytest.fixture
def ws_protocol_cls() -> Any:
    return WebSocketsSansIOProtocol


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
