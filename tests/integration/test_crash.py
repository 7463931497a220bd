"""A projection process killed with SIGKILL mid-catch-up, restarted: nothing lost, nothing counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dobby.projections.rebuild import verify
from tests.support import approved_proposal, intake_body, make_system

ROOT = Path(__file__).resolve().parents[2]
RUNS = 1500
KILLS = 3


def start_processor(database_url: str, bobbin: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_BOBBIN_PATH": str(bobbin),
        "DOBBY_SERVICE_MODE": "promotion_enabled",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dobby.cli", "process"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


@pytest.mark.backends(["sqlite", "postgres"])
def test_sigkilled_processor_resumes_without_loss_or_duplicates(database_url: str, tmp_path: Path) -> None:
    bobbin = tmp_path / "bobbin.jsonl"
    with make_system(database_url) as world:
        approvals = [approved_proposal(world, 0.90 + index / 100)["proposal_id"] for index in range(3)]
        for index in range(RUNS):
            world.engine.intake_signal(intake_body(world.families, trace_id=f"crash-{index}"), actor="load")
        head = world.engine.position()
        store = world.system.store
        kills = 0
        for _ in range(KILLS):
            before = min(store.positions().values())
            process = start_processor(database_url, bobbin)
            moved = wait_until(lambda before=before: min(store.positions().values()) > before, 60)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            assert moved
            kills += 1
        process = start_processor(database_url, bobbin)
        try:
            caught_up = wait_until(lambda: min(store.positions().values()) >= head, 120)
            assert caught_up, store.positions()
            assert wait_until(lambda: bobbin.exists() and len(bobbin.read_text().splitlines()) >= 3, 30)
        finally:
            process.terminate()
            process.wait(10)
        assert kills == KILLS
        for name in store.projections:
            assert verify(store, world.engine.log, name) == [], name
        runs = world.system.queries.list_runs({"limit": "500"})
        assert len(runs.items) == 500
        counters = {(m, labels): v for m, labels, v in world.system.queries.counters_by_metric()}
        assert counters[("dobby_intake_total", '{"result":"accepted"}')] == RUNS
        lines = [json.loads(line) for line in bobbin.read_text().splitlines()]
        assert sorted(line["proposal_id"] for line in lines) == sorted(approvals)
