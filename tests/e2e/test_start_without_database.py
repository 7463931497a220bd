"""SPEC §2: dobby starts while its database refuses or hangs, says so, and comes up by itself when it answers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.e2e.server import ROOT, start_dobby, stop
from tests.e2e.tcp_proxy import TcpProxy, tcp_proxy
from tests.support import FAMILIES, INTAKE, eventually, intake_body

pytestmark = pytest.mark.backends(["postgres"])


@contextmanager
def proxied_database(database_url: str, fault: str) -> Iterator[tuple[str, TcpProxy]]:
    """The test database behind a proxy that starts out refusing or hanging."""
    parts = urlsplit(database_url)
    with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxy.cut() if fault == "refuse" else proxy.hang()
        netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
        yield urlunsplit(parts._replace(netloc=netloc)), proxy


@contextmanager
def dobby(workdir: Path, database_url: str, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    server = start_dobby(database_url, workdir, *args)
    try:
        yield server.process, server.url, server.log
    finally:
        stop(server.process)


def answer(url: str, method: str = "GET", **kwargs: object) -> httpx.Response | None:
    try:
        return httpx.request(method, url, timeout=3.0, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return None


def intake(base: str, trace: str) -> httpx.Response | None:
    return answer(f"{base}{INTAKE}", "POST", json=intake_body(FAMILIES, trace_id=trace))


@pytest.mark.parametrize("fault", ["refuse", "hang"])
def test_serve_starts_in_warmup_and_comes_up_when_the_database_answers(
    database_url: str, tmp_path: Path, fault: str
) -> None:
    with proxied_database(database_url, fault) as (url, proxy), dobby(tmp_path, url, "serve") as (process, base, log):
        assert eventually(lambda: (a := answer(f"{base}/health")) is not None and a.status_code == 200, 30), (
            log.read_text()
        )
        ready = answer(f"{base}/ready")
        assert ready is not None and ready.status_code == 200
        body = ready.json()
        assert (body["status"], body["effective_mode"]) == ("degraded", "warmup")
        assert body["persistence"]["reachable"] is False and "persistence unreachable" in body["detail"]
        refused = intake(base, "early")
        assert refused is not None and refused.status_code == 503
        assert refused.json()["error"]["code"] == "service_mode" and refused.headers["retry-after"]
        proxy.restore()
        assert eventually(lambda: (a := intake(base, "late")) is not None and a.status_code == 201, 30), log.read_text()
        assert eventually(lambda: (a := answer(f"{base}/ready")) is not None and a.json()["status"] == "ready", 30)
        assert process.poll() is None
        assert "Traceback" not in log.read_text()


def test_process_takes_its_roles_once_the_database_answers(database_url: str, tmp_path: Path) -> None:
    with proxied_database(database_url, "refuse") as (url, proxy), dobby(tmp_path, url, "process") as (process, _, log):
        assert eventually(lambda: "waiting for the database" in log.read_text(), 30), log.read_text()
        proxy.restore()

        def tracked() -> bool:
            try:
                with psycopg.connect(database_url) as connection:
                    rows = connection.execute("SELECT count(*) FROM dobby_projection_tracking").fetchone()
            except psycopg.Error:
                return False
            return rows is not None and rows[0] >= 4

        assert eventually(tracked, 30), log.read_text()
        assert process.poll() is None
        assert "Traceback" not in log.read_text()


def test_db_init_waits_then_fails_with_one_line(database_url: str, tmp_path: Path) -> None:
    with proxied_database(database_url, "refuse") as (url, _):
        done = subprocess.run(
            [sys.executable, "-m", "dobby.cli", "db", "init"],
            env={**os.environ, "DOBBY_DATABASE_URL": url, "DOBBY_DB_WAIT_SECONDS": "1"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("dobby: the database did not answer within 1 s")
