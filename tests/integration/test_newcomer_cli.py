"""What a newcomer meets on the command line (SPEC §7, issue 25): the start-up line and a clean exit 0 on SIGTERM and
Ctrl-C; read-only commands that refuse a missing store instead of creating one; a demo of its own, repeatable."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.commands.decisions import CANDIDATE_STATES
from tests.e2e.server import start_dobby, wait_until_healthy
from tests.support import REPOSITORY, catch_up, eventually, run_cli, serve_in_process

READ_ONLY = (
    ["projections", "status"],
    ["projections", "verify"],
    ["audit", "verify-log"],
    ["audit", "--verify"],
    ["audit", "00000000-0000-0000-0000-000000000000"],
    ["audit", "export-checkpoint"],
    ["audit", "receipts", "00000000-0000-0000-0000-000000000000"],
    ["audit", "check-receipt", "receipt.json", "--checkpoint", "cp.json"],  # its proof would come from the store
)


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_refuses_a_missing_store_and_creates_nothing(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "dobby.db"
    result = run_cli(command, {"DOBBY_DATABASE_URL": f"sqlite:///{missing}"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and f"no database at {missing}" in result.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_says_where_it_listens_and_stops_cleanly_with_exit_0(stop: signal.Signals, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dobby.db'}"
    server = start_dobby(url, tmp_path, "serve")
    wait_until_healthy(server)
    server.process.send_signal(stop)
    assert server.process.wait(20) == 0, server.log.read_text()
    lines = [line for line in server.log.read_text().splitlines() if line.startswith("dobby: serving")]
    assert len(lines) == 1, server.log.read_text()
    assert "requested mode promotion_enabled" in lines[0] and f"database {url}" in lines[0]
    assert "tokens off" in lines[0] and "Traceback" not in server.log.read_text()


def test_the_start_up_line_names_the_database_without_its_password(tmp_path: Path) -> None:
    server = start_dobby("postgresql://dobby:s3cret@127.0.0.1:1/none", tmp_path, "serve")  # a database that refuses

    def started() -> bool:
        return "dobby: serving" in server.log.read_text() or server.process.poll() is not None

    try:
        assert eventually(started, 30)
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(20)
    log = server.log.read_text()
    assert "database postgresql://dobby@127.0.0.1:1/none" in log and "s3cret" not in log


def test_the_demo_runs_again_and_again_on_a_store_of_its_own(tmp_path: Path) -> None:
    databases = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "dobby.cli", "demo"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)},
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "state rolled_back" in result.stdout
        databases.append(result.stdout.splitlines()[0].split()[1])
    assert databases[0] != databases[1] and list(tmp_path.iterdir()) == []
    system = build_system(Settings(database_url=databases[1], bobbin_path=None))
    system.init_storage()
    try:
        catch_up(system)
        views = system.queries.proposal_views("demo", CANDIDATE_STATES)
        assert views and system.engine.decisions.decisions(views) == []
    finally:
        system.close()


@pytest.mark.backends(["postgres"])
def test_projections_status_and_metrics_name_the_process_holding_each_role(database_url: str, tmp_path: Path) -> None:
    processor = start_dobby(database_url, tmp_path, "process")
    try:
        holder = f"dobby {socket.gethostname()}:{processor.process.pid}"

        def status() -> str:
            result = run_cli(["projections", "status"], {"DOBBY_DATABASE_URL": database_url})
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert eventually(lambda: all(holder in line for line in status().splitlines()[1:]), 30), status()
        assert {line.split()[0] for line in status().splitlines()[1:]} >= {"runs", "expiry", "checkpoints"}
        with serve_in_process(database_url, tmp_path) as app:
            metrics = app.client.get("/metrics").text
        assert f'dobby_role_holder{{holder="{holder}",role="runs"}} 1.0' in metrics, metrics
        assert 'dobby_role_held{role="runs"} 0.0' in metrics
    finally:
        processor.process.send_signal(signal.SIGTERM)
        assert processor.process.wait(20) == 0


def test_the_demo_on_a_named_store_runs_the_whole_lifecycle_and_its_receipts_print(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    environment = {"DOBBY_WARP_APPROVALS_DIR": str(tmp_path / "approvals")}
    demo = run_cli(["demo", "--database", url], environment)
    assert demo.returncode == 0 and "state rolled_back" in demo.stdout, demo.stdout + demo.stderr
    proposal_id = next(line.split()[1] for line in demo.stdout.splitlines() if line.startswith("propose "))
    receipts = run_cli(["audit", "receipts", proposal_id], {"DOBBY_DATABASE_URL": url, **environment})
    assert receipts.returncode == 0, receipts.stderr
    assert len(receipts.stdout.splitlines()) == 2, receipts.stdout + receipts.stderr  # its activation and rollback
