"""SPEC §2 and §16 with a real disk that fills: SQLite on a small tmpfs this test mounts (and removes), filled while
dobby runs under load and before it starts. No traceback, no 500, nothing acknowledged lost, and recovery by
itself once there is room again."""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.e2e.server import Server, environment, serve, start_dobby, stop, wait_until_healthy
from tests.e2e.test_reliability import Load, report, stored_runs, verify_all
from tests.support import FAMILIES, INTAKE, eventually, intake_body, run_cli

DISK_MEGABYTES = 24


class Disk:
    """A tmpfs of DISK_MEGABYTES at `path`, and a ballast file that fills it to the last byte."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def fill(self) -> None:
        with self.ballast.open("ab", buffering=0) as out:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise

    def free(self) -> None:
        self.ballast.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MEGABYTES}m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root is needed): {mounted.stderr.strip()}")
    try:
        yield Disk(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def ready(server: Server) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = httpx.get(f"{server.url}/ready", timeout=5).json()
    except httpx.HTTPError:
        return {}
    return answer


def refusing_writes(server: Server) -> bool:
    found = ready(server)
    return (
        found.get("effective_mode") == "warmup"
        and found.get("persistence", {}).get("reachable") is True
        and found["persistence"]["writable"] is False
        and "refuses writes" in found["detail"]
        and found["status"] == "degraded"
    )


@pytest.mark.backends(["sqlite"])
def test_a_disk_that_fills_while_serving_caps_the_mode_loses_nothing_and_recovers(disk: Disk, tmp_path: Path) -> None:
    url = f"sqlite:///{disk.path / 'dobby.db'}"
    with serve(url, tmp_path) as server:
        load = Load(server.url)
        load.start()
        assert eventually(lambda: len(load.acknowledged()) > 100, 30)
        filled_at = time.monotonic()
        disk.fill()
        assert eventually(lambda: refusing_writes(server), 15), ready(server)
        capped_after = time.monotonic() - filled_at
        refused = httpx.post(f"{server.url}{INTAKE}", json=intake_body(FAMILIES, trace_id="while-full"), timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        error = refused.json()["error"]
        assert error["code"] == "service_mode" and "disk is full" in error["details"][0]["message"], error
        assert eventually(lambda: len(load.answered_since(filled_at)) >= 20, 30)
        freed_at = time.monotonic()
        disk.free()
        assert eventually(lambda: ready(server).get("status") == "ready", 15), ready(server)
        recovered_after = time.monotonic() - freed_at
        persistence = ready(server)["persistence"]
        assert persistence["reachable"] is True and persistence["writable"] is True, persistence
        assert eventually(lambda: sum(s == 201 and t > freed_at for t, _, s, _ in load.answers) >= 50, 30)
        load.finish()
    log = server.log.read_text()
    statuses = {status for _, _, status, _ in load.answers}
    acknowledged, stored = load.acknowledged(), stored_runs(url)
    differences = verify_all(url)
    report(
        "disk full while serving",
        backend="sqlite on tmpfs",
        disk_mb=DISK_MEGABYTES,
        requests=len(load.answers),
        statuses=sorted(statuses),
        capped_within_s=round(capped_after, 2),
        recovered_within_s=round(recovered_after, 2),
        acknowledged=len(acknowledged),
        acknowledged_found=len(acknowledged & stored),
        verify_differences=len(differences),
    )
    assert statuses <= {201, 503}, statuses
    assert "Traceback" not in log, log
    assert acknowledged <= stored
    assert differences == []


@pytest.mark.backends(["sqlite"])
def test_a_full_disk_before_start_starts_in_warmup_and_comes_up_when_there_is_room(disk: Disk, tmp_path: Path) -> None:
    url = f"sqlite:///{disk.path / 'dobby.db'}"
    with serve(url, tmp_path) as server, server.client() as client:
        before = [client.post(INTAKE, json=intake_body(FAMILIES, trace_id=f"before-{n}")) for n in range(20)]
        assert {answer.status_code for answer in before} == {201}
    disk.fill()
    status = run_cli(["projections", "status"], environment(url, tmp_path))
    assert "Traceback" not in status.stderr + status.stdout
    assert status.returncode == 0 or len(status.stderr.strip().splitlines()) == 1, status.stderr
    fresh = run_cli(["projections", "status"], environment(f"sqlite:///{disk.path / 'fresh.db'}", tmp_path))
    assert fresh.returncode != 0 and len(fresh.stderr.strip().splitlines()) == 1, fresh.stderr
    assert "Traceback" not in fresh.stderr
    server = start_dobby(url, tmp_path, "serve")
    try:
        assert eventually(lambda: ready(server).get("effective_mode") == "warmup", 30), server.log.read_text()
        found = ready(server)
        assert found["status"] == "degraded" and found["persistence"]["writable"] is False, found
        refused = httpx.post(f"{server.url}{INTAKE}", json=intake_body(FAMILIES, trace_id="full"), timeout=5)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "service_mode", refused.text
        assert server.process.poll() is None
        disk.free()
        wait_until_healthy(server)
        assert eventually(lambda: ready(server).get("status") == "ready", 15), ready(server)
        with server.client() as client:
            after = client.post(INTAKE, json=intake_body(FAMILIES, trace_id="after"))
            assert after.status_code == 201, after.text
            runs = client.get("/api/v1/learning/runs?limit=100&min_position=1").json()["items"]
        assert {answer.json()["run_id"] for answer in before} <= {run["run_id"] for run in runs}
    finally:
        stop(server.process)
    log = server.log.read_text()
    assert "Traceback" not in log, log
    report(
        "disk full before start",
        backend="sqlite on tmpfs",
        projections_status_exit=status.returncode,
        log_lines=len(log.splitlines()),
    )


def _set_read_only(database_url: str, on: bool) -> None:
    """The database read-only for every new transaction, and its sessions ended so every pool reconnects."""
    name = urlsplit(database_url).path.lstrip("/")
    admin = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(name), sql.SQL("on" if on else "off")
            )
        )
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.mark.backends(["postgres"])
def test_a_read_only_postgres_caps_the_mode_and_recovers(database_url: str, tmp_path: Path) -> None:
    with serve(database_url, tmp_path) as server, server.client() as client:
        assert client.post(INTAKE, json=intake_body(FAMILIES, trace_id="before")).status_code == 201
        try:
            _set_read_only(database_url, True)
            assert eventually(lambda: refusing_writes(server), 15), ready(server)
            assert "ReadOnlySqlTransaction" in ready(server)["detail"] or "read-only" in ready(server)["detail"]
            refused = client.post(INTAKE, json=intake_body(FAMILIES, trace_id="read-only"))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] in ("service_mode", "persistence_unavailable")
        finally:
            _set_read_only(database_url, False)
        assert eventually(lambda: ready(server).get("status") == "ready", 15), ready(server)
        assert eventually(
            lambda: client.post(INTAKE, json=intake_body(FAMILIES, trace_id="after")).status_code == 201, 10
        )
    assert "Traceback" not in server.log.read_text()
