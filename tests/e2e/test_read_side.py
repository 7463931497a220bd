"""The default `dobby serve` runs its read side in a child process it supervises (SPEC §7): real processes, real
signals — the child runs and projects, a SIGKILLed child is named in /ready and comes back, and neither a stopped
nor a killed parent leaves the child behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from dobby.runtime.read_side import wants_child
from tests.e2e.server import Server, serve
from tests.support import eventually

pytestmark = pytest.mark.skipif(not wants_child(False), reason="a one-core machine runs the read side in-process")

INTAKE = {
    "tenant_id": "tenant-a",
    "trace_id": "trace-read-side",
    "correlation_id": "corr-1",
    "outcome": "success",
    "guardrail_decision": "ALLOW",
    "family_versions": {"routing": "1.0.0"},
}


def ready(server: Server) -> dict[str, Any]:
    try:
        body: dict[str, Any] = httpx.get(f"{server.url}/ready", timeout=5).json()
    except httpx.HTTPError:
        return {}
    return body


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def projected(client: httpx.Client, position: int) -> bool:
    params: dict[str, str | int] = {"tenant_id": "tenant-a", "min_position": position}
    read = client.get("/api/v1/learning/targets/routing/r1", params=params)
    assert read.status_code in (200, 503), read.text
    return read.status_code == 200


def child_pid(server: Server) -> int:
    assert eventually(lambda: ready(server).get("read_side", {}).get("running") is True, 30), server.log.read_text()
    pid: int = ready(server)["read_side"]["pid"]
    assert b"process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


@pytest.mark.backends(["postgres"])
def test_the_child_projects_and_a_sigkilled_child_is_named_and_comes_back(database_url: str, tmp_path: Path) -> None:
    with serve(database_url, tmp_path) as server, server.client() as client:
        first = child_pid(server)
        written = client.post("/api/v1/learning/signals/intake", json=INTAKE)
        assert written.status_code == 201, written.text
        position = written.json()["position"]
        # only the child projects: a read that waits for the write's position is answered once it has started
        assert eventually(lambda: projected(client, position), 30), server.log.read_text()

        os.kill(first, signal.SIGKILL)
        assert eventually(lambda: "read side down" in ready(server).get("detail", ""), 10), ready(server)
        down = ready(server)
        assert down["status"] == "degraded"
        assert "killed by SIGKILL" in down["detail"]

        assert eventually(lambda: ready(server).get("read_side", {}).get("running") is True, 30), ready(server)
        back = ready(server)
        assert back["read_side"]["pid"] != first
        assert back["read_side"]["restarts"] >= 1
        assert eventually(lambda: ready(server).get("status") == "ready", 30), ready(server)
        again = client.post("/api/v1/learning/signals/intake", json={**INTAKE, "trace_id": "trace-after"})
        assert eventually(lambda: projected(client, again.json()["position"]), 30), server.log.read_text()
        second = back["read_side"]["pid"]
    assert server.process.returncode == 0
    assert not alive(second), "the stopped parent left its read side running"


@pytest.mark.backends(["postgres"])
def test_a_sigkilled_parent_leaves_no_orphan(database_url: str, tmp_path: Path) -> None:
    with serve(database_url, tmp_path) as server:
        pid = child_pid(server)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        assert eventually(lambda: not alive(pid), 15), "the read side outlived its parent"


@pytest.mark.backends(["postgres"])
def test_ctrl_c_stops_the_parent_and_its_child_cleanly(database_url: str, tmp_path: Path) -> None:
    with serve(database_url, tmp_path) as server:
        pid = child_pid(server)
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(20) == 0, server.log.read_text()
        assert not alive(pid), "Ctrl-C left the read side running"
        assert "Traceback" not in server.log.read_text()
