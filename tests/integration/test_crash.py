"""A projection process killed with SIGKILL mid-catch-up, restarted: nothing lost, nothing counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from dobby.projections.rebuild import verify
from dobby.projections.store import ProjectionStore
from tests.support import approved_proposal, eventually, make_system, record_runs

ROOT = Path(__file__).resolve().parents[2]
RUNS = 20_000
KILLS = 3


def start_processor(database_url: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_BOBBIN_PATH": str(workdir / "bobbin.jsonl"),
        "DOBBY_SERVICE_MODE": "promotion_enabled",
        "DOBBY_WARP_APPROVALS_DIR": str(workdir / "approvals"),
    }
    with (workdir / "processor.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dobby.cli", "process"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )


def moved_from(store: ProjectionStore, before: dict[str, int]) -> bool:
    return store.positions() != before


@pytest.mark.backends(["sqlite", "postgres"])
def test_sigkilled_processor_resumes_without_loss_or_duplicates(database_url: str, tmp_path: Path) -> None:
    bobbin = tmp_path / "bobbin.jsonl"
    with make_system(database_url) as world:
        approvals = [approved_proposal(world, 0.90 + index / 100)["proposal_id"] for index in range(3)]
        record_runs(world.log, world.families, RUNS, world.clock.now, tag="crash")
        head = world.engine.position()
        store = world.system.store
        interrupted = 0
        for _ in range(KILLS):
            before = store.positions()
            process = start_processor(database_url, tmp_path)
            moved = eventually(partial(moved_from, store, before), 60)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            assert moved, (tmp_path / "processor.log").read_text()[-3000:]
            interrupted += min(store.positions().values()) < head
        process = start_processor(database_url, tmp_path)
        try:
            assert eventually(lambda: min(store.positions().values()) >= head, 120), store.positions()
            assert eventually(lambda: bobbin.exists() and len(bobbin.read_text().splitlines()) >= 3, 30)
        finally:
            process.terminate()
            process.wait(10)
        assert interrupted >= 1, "no kill landed before the catch-up finished"
        for name in store.projections:
            assert verify(store, world.log, name) == [], name
        counters = {(m, labels): v for m, labels, v in world.system.queries.counters_by_metric()}
        assert counters[("dobby_intake_total", '{"result":"accepted"}')] == RUNS
        lines = [json.loads(line) for line in bobbin.read_text().splitlines()]
        assert sorted(line["proposal_id"] for line in lines) == sorted(approvals)
