from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dobby.http.auth import load_tokens
from tests.support import run_cli

ROOT = Path(__file__).resolve().parents[2]


def dobby(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DOBBY_WARP_APPROVALS_DIR": str(tmp_path / "approvals"),
    }
    if args == ["demo"]:  # the demo writes where it is told to, never by itself into the configured store
        args = ["demo", "--database", env["DOBBY_DATABASE_URL"]]
        env["DOBBY_SERVICE_MODE"] = "promotion_enabled"
    return run_cli(args, env)


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


@pytest.mark.parametrize(
    ("name", "value"), [("DOBBY_REPLAY_BUDGET", "lots"), ("DOBBY_REPLAY_BUDGET", "0"), ("DOBBY_SERVICE_MODE", "fast")]
)
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
    assert len(result.stderr.strip().splitlines()) == 1


def test_projection_commands_status_rebuild_and_verify(tmp_path: Path) -> None:
    assert dobby(["db", "init"], tmp_path).returncode == 0
    assert dobby(["demo"], tmp_path).returncode == 0
    status = dobby(["projections", "status"], tmp_path)
    assert status.returncode == 0 and "runs" in status.stdout
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    lags = [int(row[2]) for row in rows if row[2] != "-"]  # roles that are not projections have no lag
    assert lags and all(lag > 0 for lag in lags)
    assert {row[-1] for row in rows} == {"the-serving-process"}  # SQLite: one process runs every role
    rebuilt = dobby(["projections", "rebuild"], tmp_path)
    assert rebuilt.returncode == 0 and "events/s" in rebuilt.stdout
    assert dobby(["projections", "rebuild", "nope"], tmp_path).returncode == 2
    assert dobby(["projections", "verify"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        connection.execute("UPDATE dobby_proposals SET state = 'active'")
    broken = dobby(["projections", "verify"], tmp_path)
    assert broken.returncode == 1 and "proposals: 1 difference" in broken.stdout


def tokens(args: list[str], tmp_path: Path, file: Path | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DOBBY_API_TOKENS_FILE"}
    if file is not None:
        env["DOBBY_API_TOKENS_FILE"] = str(file)
    return subprocess.run(
        [sys.executable, "-m", "dobby.cli", "tokens", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_tokens_add_list_revoke_keep_only_hashes(tmp_path: Path) -> None:
    file = tmp_path / "secrets" / "tokens.json"
    added = tokens(["add", "ci", "--roles", "submitter,auditor", "--tenants", "acme,beta"], tmp_path, file)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 40 and token not in file.read_text()
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    principals = load_tokens(file)
    principal = principals[hashlib.sha256(token.encode()).hexdigest()]
    assert (principal.name, principal.roles, principal.tenants) == (
        "ci",
        frozenset({"submitter", "auditor"}),
        frozenset({"acme", "beta"}),
    )
    assert tokens(["add", "ops", "--roles", "operator", "--tenants", "*"], tmp_path, file).returncode == 0
    listed = tokens(["list"], tmp_path, file)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["ci", "ops"]
    assert hashlib.sha256(token.encode()).hexdigest() not in listed.stdout
    assert tokens(["revoke", "ci"], tmp_path, file).returncode == 0
    assert [p.name for p in load_tokens(file).values()] == ["ops"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x", "--roles", "admin", "--tenants", "*"], "roles must be"),
        (["add", "x", "--roles", "operator", "--tenants", ","], "tenants must be"),
        (["add", "ops", "--roles", "operator", "--tenants", "*"], "exists already"),
        (["revoke", "nobody"], "no token named"),
    ],
)
def test_tokens_refusals_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    file = tmp_path / "tokens.json"
    assert tokens(["add", "ops", "--roles", "operator", "--tenants", "*"], tmp_path, file).returncode == 0
    before = file.read_bytes()
    refused = tokens(args, tmp_path, file)
    assert refused.returncode == 1
    assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert file.read_bytes() == before


def test_tokens_without_the_file_setting_name_the_variable(tmp_path: Path) -> None:
    refused = tokens(["list"], tmp_path, None)
    assert refused.returncode == 2 and "DOBBY_API_TOKENS_FILE" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_serve_flags_override_the_environment(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "dobby.cli", "serve", "--host", "0.0.0.0", "--port", "70000"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOBBY_PORT": "18096", "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "DOBBY_PORT='70000'" in refused.stderr
    beyond_loopback = subprocess.run(
        [sys.executable, "-m", "dobby.cli", "serve", "--host", "0.0.0.0", "--port", "18097"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert beyond_loopback.returncode == 2 and "refusing to serve on 0.0.0.0" in beyond_loopback.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_a_missing_tokens_file_stops_in_one_line(tmp_path: Path, workers: str) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "dobby.cli", "serve", "--port", "18097", "--workers", workers],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DOBBY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "DOBBY_API_TOKENS_FILE": str(tmp_path / "missing.json"),
        },
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "DOBBY_API_TOKENS_FILE" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
