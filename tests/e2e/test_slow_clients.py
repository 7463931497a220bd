"""SPEC §16 against a real `dobby serve`: hundreds of connections that send their headers or their body slowly, or
nothing at all, or sit idle after an answer, while other clients' reads and writes all succeed; each slow request
gets its 408 or a closed connection within the body timeout (a small one here, so the test takes seconds)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, serve
from tests.e2e.test_reliability import report
from tests.support import FAMILIES, INTAKE, LEARNING, intake_body

pytestmark = pytest.mark.backends(["sqlite"])
TIMEOUT = 2  # DOBBY_BODY_TIMEOUT_SECONDS in this test
KEEP_ALIVE = 5  # SPEC §16
IN_FLIGHT = 40  # DOBBY_MAX_IN_FLIGHT: fewer than the slow bodies, so a slot held while a body trickles would show
SLACK = 10.0  # scheduling on a loaded 2-core machine (make test runs three workers): a slow client holds at most
# TIMEOUT (or KEEP_ALIVE) + this; without the bounds it holds its connection for ever (inf)
DRIBBLE = 0.25  # seconds between a slow client's bytes
SLOW_HEADERS, SLOW_BODIES, SILENT, IDLE = 200, 200, 30, 30


@dataclass
class Ending:
    kind: str
    seconds: float  # from the connection's opening (idle: from its answer) to the server's close; inf: never
    answer: bytes


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection. A close may arrive as a reset (the client was
    still dribbling when the server had answered and closed): the connection ended then, with what came before."""
    received = bytearray()
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionError:
        pass
    return bytes(received)


async def slow_connection(host: str, port: int, kind: str) -> Ending:
    """One hostile connection, held until the server closes it (or the bound plus slack has passed)."""
    reader, writer = await asyncio.open_connection(host, port)
    opened = time.monotonic()
    head = f"POST {INTAKE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    bound = TIMEOUT
    if kind == "idle":
        writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        first = await reader.readuntil(b'"jhf-dobby"}')
        assert first.startswith(b"HTTP/1.1 200"), first
        opened, bound = time.monotonic(), KEEP_ALIVE
    elif kind == "body":
        writer.write((head + "Content-Length: 1000\r\n\r\n{").encode())
    elif kind == "headers":
        writer.write(head.encode())
    dribble = b"x" if kind == "body" else b"X-Slow: 1\r\n"
    reading = asyncio.ensure_future(_until_closed(reader))
    while not reading.done() and time.monotonic() - opened < bound + SLACK:
        if kind in ("headers", "body"):
            try:
                writer.write(dribble)
                await writer.drain()
            except ConnectionError:
                break
        await asyncio.wait([reading], timeout=DRIBBLE)
    try:
        answer = await asyncio.wait_for(reading, 0.5)
        seconds = time.monotonic() - opened
    except TimeoutError:
        answer, seconds = b"", float("inf")
    writer.close()
    return Ending(kind, seconds, answer)


async def hostile_crowd(url: str) -> list[Ending]:
    host, port = url.removeprefix("http://").split(":")
    kinds = ["headers"] * SLOW_HEADERS + ["body"] * SLOW_BODIES + ["silent"] * SILENT + ["idle"] * IDLE
    return list(await asyncio.gather(*(slow_connection(host, int(port), kind) for kind in kinds)))


def crowd_on_its_own_thread(url: str) -> list[Ending]:
    """The hostile crowd on an event loop of its own thread (the browser tests keep a loop running in this one)."""
    found: list[list[Ending]] = []
    runner = threading.Thread(target=lambda: found.append(asyncio.run(hostile_crowd(url))), daemon=True)
    runner.start()
    runner.join(60)
    assert found, "the hostile crowd did not finish within 60 s"
    return found[0]


@dataclass
class Others:
    """Well-behaved clients: intakes, reads, /health and /ready in a loop until stopped; every answer kept."""

    url: str
    answers: list[tuple[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def work(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            index = 0
            while not self.stop.is_set():
                index += 1
                body = intake_body(FAMILIES, trace_id=f"polite-{number}-{index}")
                for name, method, path in (
                    ("intake", "POST", INTAKE),
                    ("runs", "GET", f"{LEARNING}/runs?limit=5"),
                    ("health", "GET", "/health"),
                    ("ready", "GET", "/ready"),
                ):
                    try:
                        answer = client.request(method, path, json=body if method == "POST" else None)
                        self.answers.append((name, answer.status_code))
                    except httpx.HTTPError:
                        self.answers.append((name, -1))


def test_slow_clients_hold_nothing_others_need(tmp_path: Path) -> None:
    settings = {"DOBBY_BODY_TIMEOUT_SECONDS": str(TIMEOUT), "DOBBY_MAX_IN_FLIGHT": str(IN_FLIGHT)}
    with serve(f"sqlite:///{tmp_path / 'slow.db'}", tmp_path, **settings) as server:
        others = Others(server.url)
        workers = [threading.Thread(target=others.work, args=(n,), daemon=True) for n in range(4)]
        for worker in workers:
            worker.start()
        try:
            endings = crowd_on_its_own_thread(server.url)
        finally:
            others.stop.set()
            for worker in workers:
                worker.join(30)
        with server.client() as client:  # and afterwards the server still answers
            assert client.get("/health").status_code == 200
    record(server, endings, others)
    late = [(e.kind, e.seconds) for e in endings if e.seconds > (KEEP_ALIVE if e.kind == "idle" else TIMEOUT) + SLACK]
    assert late == [], late[:10]
    for ending in endings:
        if ending.kind == "body":
            assert ending.answer.startswith(b"HTTP/1.1 408"), ending.answer[:200]
            assert b'"request_timeout"' in ending.answer
        elif ending.kind == "headers":
            assert ending.answer == b"" or ending.answer.startswith(b"HTTP/1.1 408"), ending.answer[:200]
            assert ending.answer == b"" or b"x-content-type-options: nosniff" in ending.answer.lower()
        else:
            assert ending.answer == b"", ending.answer[:200]
    statuses = Counter(others.answers)
    assert set(statuses) <= {("intake", 201), ("runs", 200), ("health", 200), ("ready", 200)}, statuses
    assert all(statuses[(name, status)] >= 10 for name, status in (("intake", 201), ("ready", 200))), statuses


def record(server: Server, endings: list[Ending], others: Others) -> None:
    by_kind: dict[str, list[float]] = {}
    for ending in endings:
        by_kind.setdefault(ending.kind, []).append(ending.seconds)
    report(
        "slow clients",
        body_timeout_s=TIMEOUT,
        in_flight_limit=IN_FLIGHT,
        connections={kind: len(seconds) for kind, seconds in by_kind.items()},
        slowest_close_s={kind: round(max(seconds), 2) for kind, seconds in by_kind.items()},
        fastest_close_s={kind: round(min(seconds), 2) for kind, seconds in by_kind.items()},
        others_answers=len(others.answers),
        others_statuses=dict(Counter(status for _, status in others.answers)),
    )
