from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dobby(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DOBBY_WARP_APPROVALS_DIR": str(tmp_path / "approvals"),
    }
    return subprocess.run(
        [sys.executable, "-m", "dobby.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_demo_then_audit_verifies_the_chain(tmp_path: Path) -> None:
    demo = dobby(["demo"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    proposal_id = next(line.split()[1] for line in demo.stdout.splitlines() if line.startswith("propose"))
    audit = dobby(["audit", proposal_id, "--verify", "--json"], tmp_path)
    assert audit.returncode == 0, audit.stderr
    history = json.loads(audit.stdout)
    assert history["chain_valid"] is True
    assert [e["type"] for e in history["events"]] == [
        "Generated",
        "ReplayValidated",
        "Approved",
        "Activated",
        "RolledBack",
    ]
    as_of = json.loads(dobby(["audit", proposal_id, "--as-of-version", "2", "--json"], tmp_path).stdout)
    assert as_of["as_of"]["state"] == "replay_validated"


def test_a_tampered_event_fails_verification(tmp_path: Path) -> None:
    demo = dobby(["demo"], tmp_path)
    proposal_id = next(line.split()[1] for line in demo.stdout.splitlines() if line.startswith("propose"))
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        row = connection.execute("SELECT rowid, state FROM stored_events WHERE topic LIKE '%Activated'").fetchone()
        state = json.loads(row[1])
        state["actor"] = "mallory"
        state["payload"]["approval_id"] = "forged"
        connection.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (json.dumps(state).encode(), row[0]))
    audit = dobby(["audit", proposal_id, "--verify"], tmp_path)
    assert audit.returncode == 1
    assert "chain BROKEN" in audit.stdout


@pytest.mark.parametrize(("name", "value"), [("DOBBY_REPLAY_BUDGET", "lots"), ("DOBBY_SERVICE_MODE", "fast")])
def test_bad_settings_stop_the_start_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "-m", "dobby.cli", "db", "init"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and name in result.stderr


def test_projection_commands_status_rebuild_and_verify(tmp_path: Path) -> None:
    assert dobby(["db", "init"], tmp_path).returncode == 0
    assert dobby(["demo"], tmp_path).returncode == 0
    status = dobby(["projections", "status"], tmp_path)
    assert status.returncode == 0 and "runs" in status.stdout
    lags = [int(line.split()[2]) for line in status.stdout.splitlines()[1:]]
    assert all(lag > 0 for lag in lags)
    rebuilt = dobby(["projections", "rebuild"], tmp_path)
    assert rebuilt.returncode == 0 and "events/s" in rebuilt.stdout
    assert dobby(["projections", "rebuild", "nope"], tmp_path).returncode == 2
    assert dobby(["projections", "verify"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        connection.execute("UPDATE dobby_proposals SET state = 'active'")
    broken = dobby(["projections", "verify"], tmp_path)
    assert broken.returncode == 1 and "proposals: 1 difference" in broken.stdout
