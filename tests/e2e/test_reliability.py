"""Faults under load, over HTTP: the database cut away and restored, and the API killed with SIGKILL.

Each test is bounded in requests and time, and records its figures in `FIGURES` for docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.projections.rebuild import verify
from tests.e2e.server import Server, serve
from tests.e2e.tcp_proxy import tcp_proxy
from tests.support import FAMILIES, LEARNING, eventually, intake_body

MAX_REQUESTS = 20_000
TIMEOUT = 10.0  # generous: an answer that never comes fails the test; how fast answers come is a figure (report)
FIGURES = Path(__file__).resolve().parents[2] / "var" / "reliability-figures.jsonl"


def report(test: str, **figures: object) -> None:
    """Append this run's figures for docs/RELIABILITY.md (var/ is not committed)."""
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"test": test, "at": time.strftime("%Y-%m-%d %H:%M"), **figures}) + "\n")


@dataclass
class Load:
    """Posts unique intakes from a few threads until stopped; remembers every answer."""

    url: str
    threads: int = 4
    answers: list[tuple[float, float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._workers = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def finish(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(30)

    def _work(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=TIMEOUT) as client:
            index = 0
            while not self.stop.is_set() and len(self.answers) < MAX_REQUESTS:
                index += 1
                body = intake_body(FAMILIES, trace_id=f"load-{number}-{index}-{time.time_ns()}")
                started = time.monotonic()
                try:
                    answer = client.post(f"{LEARNING}/signals/intake", json=body)
                    status, run_id = answer.status_code, answer.json().get("run_id")
                    if status == 503:
                        time.sleep(0.02)
                except httpx.HTTPError:
                    status, run_id = 0, None
                    time.sleep(0.05)
                self.answers.append((started, time.monotonic() - started, status, run_id))

    def answered_since(self, moment: float) -> list[int]:
        """The statuses of the requests sent at or after `moment` that have their answer (0: no connection)."""
        return [status for started, _, status, _ in self.answers if started >= moment]

    def acknowledged(self) -> set[str]:
        return {run_id for _, _, status, run_id in self.answers if status == 201 and run_id}


def stored_runs(database_url: str) -> set[str]:
    system = build_system(Settings(database_url=database_url, bobbin_path=None, group_commit=False))
    try:
        found, after = set(), 0
        while batch := system.engine.context.uow.log.recorder.select_notifications(
            start=after, limit=5000, inclusive_of_start=False
        ):
            found |= {str(n.originator_id) for n in batch if n.topic.endswith(":RunRecorded")}
            after = batch[-1].id
        return found
    finally:
        system.close()


def verify_all(database_url: str) -> list[str]:
    system = build_system(Settings(database_url=database_url, bobbin_path=None, group_commit=False))
    try:
        system.init_storage()
        while system.follower.step():
            pass
        return [
            line
            for name in system.store.projections
            for line in verify(system.store, system.engine.context.uow.log, name)
        ]
    finally:
        system.close()


def ready(server: Server) -> dict[str, object]:
    """GET /ready; no answer is {}."""
    try:
        answer: dict[str, object] = httpx.get(f"{server.url}/ready", timeout=TIMEOUT).json()
    except httpx.HTTPError:
        return {}
    return answer


@pytest.mark.backends(["postgres"])
@pytest.mark.parametrize("fault", ["refuse", "hang"])
def test_database_outage_degrades_answers_503_and_recovers(database_url: str, tmp_path: Path, fault: str) -> None:
    parts = urlsplit(database_url)
    with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"))
        with serve(proxied, tmp_path) as server:
            load = Load(server.url)
            load.start()
            assert eventually(lambda: len(load.acknowledged()) > 50, 30)
            cut_at = time.monotonic()
            proxy.cut() if fault == "refuse" else proxy.hang()
            assert eventually(lambda: ready(server).get("effective_mode") == "warmup", 30)
            outage = ready(server)
            assert outage["status"] == "degraded" and outage["persistence"] == {
                "reachable": False,
                "writable": False,
                "latency_ms": None,
            }
            assert eventually(lambda: len(load.answered_since(cut_at)) >= 8, 30)  # the load has met the outage
            proxy.restore()
            restored_at = time.monotonic()
            assert eventually(lambda: ready(server).get("status") == "ready", 30)
            assert eventually(lambda: sum(s == 201 and t > restored_at for t, _, s, _ in load.answers) >= 100, 30)
            load.finish()
        during = [(elapsed, status) for started, elapsed, status, _ in load.answers if cut_at <= started < restored_at]
        assert during, "no request was sent during the outage"
        assert all(status in (201, 503) for _, status in during), sorted({s for _, s in during})
        acknowledged = load.acknowledged()
        stored = stored_runs(database_url)
        differences = verify_all(database_url)
        report(
            f"database outage ({fault})",
            backend="postgres",
            requests=len(load.answers),
            during_outage=len(during),
            answered_503=sum(1 for _, s in during if s == 503),
            slowest_during_outage_s=round(max(e for e, _ in during), 2),
            acknowledged=len(acknowledged),
            acknowledged_found=len(acknowledged & stored),
            stored=len(stored),
            verify_differences=len(differences),
        )
        assert acknowledged <= stored
        assert differences == []


@pytest.mark.backends(["sqlite", "postgres"])
def test_api_killed_under_load_loses_no_acknowledged_write(database_url: str, tmp_path: Path) -> None:
    with serve(database_url, tmp_path) as server:
        load = Load(server.url)
        load.start()
        assert eventually(lambda: len(load.acknowledged()) > 200, 30)
        killed_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        assert eventually(lambda: 0 in load.answered_since(killed_at), 30)  # the load has met the dead server
        load.finish()
    acknowledged = load.acknowledged()
    with serve(database_url, tmp_path) as restarted, restarted.client() as client:
        assert client.get("/ready").json()["persistence"]["reachable"] is True
    stored = stored_runs(database_url)
    differences = verify_all(database_url)
    report(
        "API SIGKILL under load",
        backend=urlsplit(database_url).scheme,
        requests=len(load.answers),
        acknowledged=len(acknowledged),
        acknowledged_found=len(acknowledged & stored),
        stored=len(stored),
        verify_differences=len(differences),
    )
    assert acknowledged <= stored
    assert differences == []
