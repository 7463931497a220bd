"""A 413 arrives as a 413 (SPEC §4): a client still sending a body over 1 MiB reads the answer, not a reset."""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import Server
from tests.support import INTAKE

pytestmark = pytest.mark.backends(["sqlite"])
THREE_MIB = 3 * 1024 * 1024


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"tenant_id": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def answer_on(connection: socket.socket) -> tuple[int, str]:
    """The status and error code of the one response on `connection`."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response.status, json.loads(response.read())["error"]["code"]


def chunked(data: bytes, size: int = 64 * 1024) -> bytes:
    return b"".join(
        b"%x\r\n%s\r\n" % (len(data[at : at + size]), data[at : at + size]) for at in range(0, len(data), size)
    )


@pytest.mark.parametrize("declared", [True, False])
def test_a_too_large_body_gets_its_413_while_the_client_is_still_sending(server: Server, declared: bool) -> None:
    body = b"".join(chunks(THREE_MIB))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post(
            INTAKE,
            content=body if declared else chunks(THREE_MIB),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


def test_a_raw_socket_reads_the_413_after_sending_everything(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    payload = b"x" * THREE_MIB
    request = (
        f"POST {INTAKE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request + payload)
        assert answer_on(connection) == (413, "body_too_large")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_client_that_keeps_sending_after_the_limit_still_reads_its_413(server: Server, framing: str) -> None:
    """The server answers only after it has read and dropped the rest of the body: a client that pauses past the
    limit (long enough for a server that answers early to answer and close) can still send all of it."""
    host, port = server.url.removeprefix("http://").split(":")
    half = b"x" * (THREE_MIB // 2)
    if framing == "chunked":
        first, rest, length = chunked(half), chunked(half) + b"0\r\n\r\n", "Transfer-Encoding: chunked"
    else:
        first, rest, length = half, half, f"Content-Length: {2 * len(half)}"
    head = f"POST {INTAKE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode() + first)
        early, _, _ = select.select([connection], [], [], 1.0)
        connection.sendall(rest)
        answer = answer_on(connection)
    assert not early, "the server answered before the body was read to its end"
    assert answer == (413, "body_too_large")


def test_the_server_still_answers_on_a_fresh_connection_afterwards(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post(INTAKE, content=b"x" * THREE_MIB, headers={"content-type": "application/json"})
        assert client.get("/health").status_code == 200
