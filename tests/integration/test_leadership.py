"""One instance per background role across processes (SPEC §10): advisory-lock leadership with a lease, and a
Bobbin sink shared by several writers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest

from dobby.adapters.bobbin import BobbinProvenanceSink
from dobby.engine.kernel.ports import ProvenanceRecord
from dobby.runtime.leadership import Leadership, process_identity
from tests.support import eventually

ROLES = ["runs", "bobbin", "expiry", "checkpoints"]


def record(proposal_id: str) -> ProvenanceRecord:
    return ProvenanceRecord(
        proposal_id,
        "t",
        {"type": "x", "id": "y"},
        "c",
        "sha256:change",
        "p",
        "a",
        {"id": "h", "kind": "human"},
        "2026-01-01T00:00:00.000000Z",
        "sha256:e",
    )


def lines_of(path: Path) -> list[str]:
    return [json.loads(line)["proposal_id"] for line in path.read_text().splitlines()]


def test_a_second_sink_on_the_same_file_never_appends_what_the_first_wrote(tmp_path: Path) -> None:
    """A new leader's sink, loaded before the old leader's last append, still sees it (the crash-and-takeover
    case of issue 12)."""
    path = tmp_path / "bobbin.jsonl"
    old, new = BobbinProvenanceSink(path), BobbinProvenanceSink(path)
    new.append(record("p0"))
    assert old.published_ids() == {"p0"}
    old.append(record("p1"))
    new.append(record("p1"))
    new.append(record("p2"))
    old.append(record("p2"))
    assert lines_of(path) == ["p0", "p1", "p2"]


def test_sinks_racing_on_one_file_write_each_proposal_once(tmp_path: Path) -> None:
    path = tmp_path / "bobbin.jsonl"
    sinks = [BobbinProvenanceSink(path) for _ in range(4)]

    def publish(sink: BobbinProvenanceSink) -> None:
        for index in range(50):
            sink.append(record(f"p{index}"))

    threads = [threading.Thread(target=publish, args=(sink,)) for sink in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(lines_of(path)) == sorted(f"p{index}" for index in range(50))


def test_without_postgres_a_process_leads_every_role() -> None:
    leadership = Leadership(ROLES, None)
    leadership.start()
    assert leadership.leading() is None and leadership.leads("expiry")


@pytest.mark.backends(["postgres"])
def test_each_role_has_one_holder_and_passes_on_when_its_session_ends(database_url: str) -> None:
    first, second = Leadership(ROLES, database_url), Leadership(ROLES, database_url)
    try:
        assert first.check() == set(ROLES)
        assert second.check() == set()
        assert first.leading() == set(ROLES) and second.leading() == set()
        first.stop()
        # PostgreSQL frees a closed session's advisory locks when its backend exits, a moment after the close.
        assert eventually(lambda: second.check() == set(ROLES))
        first.start()
        time.sleep(1.5)
        assert first.leading() == set()
    finally:
        first.stop()
        second.stop()


@pytest.mark.backends(["postgres"])
def test_a_holder_whose_session_is_killed_stops_and_another_takes_over(database_url: str) -> None:
    first, second = Leadership(ROLES, database_url), Leadership(ROLES, database_url)
    try:
        first.start()
        assert eventually(lambda: first.leading() == set(ROLES), 5)
        second.start()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        assert eventually(lambda: second.leading() == set(ROLES), 5)
        assert eventually(lambda: first.leading() == set(), 5)
    finally:
        first.stop()
        second.stop()


@pytest.mark.backends(["postgres"])
def test_a_holder_stops_acting_when_its_lease_runs_out_before_its_locks_are_released(database_url: str) -> None:
    """A holder that cannot confirm its session (cut off) stops acting after the lease, although the server still
    holds its locks for it: nobody acts on the role until the server ends that session."""
    first = Leadership(ROLES, database_url, lease_seconds=0.2)
    second = Leadership(ROLES, database_url)
    try:
        assert first.check() == set(ROLES)
        assert first.leads("runs")
        time.sleep(0.3)
        assert first.leading() == set() and not first.leads("runs")
        assert second.check() == set()
        assert first.check() == set(ROLES)  # the session answers again: the roles were never lost
    finally:
        first.stop()
        second.stop()


@pytest.mark.backends(["postgres"])
def test_any_process_can_tell_who_holds_each_role(database_url: str) -> None:
    first, second = Leadership(ROLES, database_url), Leadership(ROLES, database_url)
    try:
        assert second.holders() == dict.fromkeys(ROLES)
        first.check()
        assert second.holders() == dict.fromkeys(ROLES, process_identity())
        first.stop()
        assert second.holders() == dict.fromkeys(ROLES)
    finally:
        first.stop()
        second.stop()
