"""Versioned projections (SPEC §13): a projection whose stored version is older than its code is rebuilt at start
by the one process holding its role, in shadow tables, while the live tables serve reads and writes go on; a
process whose code is older than the stored version leaves the projection alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Table, inspect, text

from dobby.adapters.settings import Settings
from dobby.bootstrap import build_system
from dobby.engine.rules.modes import Mode
from dobby.http.app import create_app
from dobby.projections.merkle_tree import MerkleProjection
from dobby.projections.rebuild import verify
from dobby.projections.store import EVERY_PROJECTION
from dobby.projections.targets import TargetsProjection
from dobby.projections.views import (
    CountersProjection,
    ProposalsProjection,
    Recorded,
    ReplaysProjection,
    RunsProjection,
)
from dobby.runtime.system import System
from tests.support import (
    FAMILIES,
    INTAKE,
    LEARNING,
    AppClient,
    approved_proposal,
    catch_up,
    eventually,
    intake_body,
    make_system,
    propose_body,
    record_runs,
    replay_body,
    run_cli,
    running_app,
)


class BumpedProposals(ProposalsProjection):
    """The proposals projection of a later release: the one-line change is `version = …`. Its shadow batches are
    slowed down (a busy disk), so the test sees the rebuild while it runs."""

    version = ProposalsProjection.version + 1

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        if tables["proposals"].name.endswith("__shadow"):
            time.sleep(0.02)
        super().apply(connection, tables, batch)


def bumped() -> tuple[Any, ...]:
    return (
        RunsProjection(),
        ReplaysProjection(),
        BumpedProposals(),
        CountersProjection(),
        TargetsProjection(),
        MerkleProjection(),
    )


def settings(database_url: str, workdir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        service_mode=Mode.promotion_enabled,
        warp_approvals_dir=workdir / "approvals",
        bobbin_path=None,
        fabric_refresh_seconds=3600,
    )


def seed(database_url: str, runs: int = 0) -> list[dict[str, Any]]:
    """A few approved proposals (and `runs` more runs), every projection caught up at today's versions."""
    with make_system(database_url) as world:
        proposals = [approved_proposal(world, target={"type": "prompt_template", "id": f"t{i}"}) for i in range(4)]
        if runs:
            record_runs(world.log, FAMILIES, runs, datetime(2026, 1, 1, tzinfo=UTC))
        catch_up(world.system)
        return proposals


@contextmanager
def started(system: System) -> Iterator[System]:
    system.start(background=True)
    try:
        yield system
    finally:
        system.close()


def stored(system: System) -> dict[str, int]:
    return system.store.stored_versions()


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_fresh_database_stores_every_projection_at_its_code_version(database_url: str) -> None:
    with make_system(database_url) as world:
        assert stored(world.system) == {p.name: p.version for p in EVERY_PROJECTION}
        assert all(p.version >= 1 for p in EVERY_PROJECTION)  # newer than "unversioned" (0)
        health = world.system.projection_health()
        assert all(health[p.name]["rebuilding"] is None for p in EVERY_PROJECTION)


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_database_written_before_versions_is_rebuilt_by_itself_at_start(database_url: str, tmp_path: Path) -> None:
    proposals = seed(database_url)
    with make_system(database_url) as world, world.system.store.engine.begin() as connection:
        connection.execute(text("DROP TABLE dobby_projection_versions"))  # as a release before versions left it
        connection.execute(text("UPDATE dobby_proposals SET view = '{}'"))  # and rows of an older shape
    system = build_system(settings(database_url, tmp_path))
    with started(system):
        assert eventually(lambda: stored(system) == {p.name: p.version for p in EVERY_PROJECTION})
        assert all(not verify(system.store, system.engine.context.uow.log, name) for name in system.store.projections)
        view = system.queries.get_proposal(proposals[0]["proposal_id"])
        assert view["state"] == "approved" and "auto_rollback" in view
        assert {len(reports) for reports in system.follower.upgrader.rebuilt.values()} == {1}
        assert set(system.follower.upgrader.rebuilt) == set(system.store.projections)


@pytest.mark.backends(["postgres"])
def test_a_bumped_version_is_rebuilt_at_start_by_one_of_two_processes_while_reads_and_writes_go_on(
    database_url: str, tmp_path: Path
) -> None:
    proposals = seed(database_url, runs=1500)
    first = build_system(settings(database_url, tmp_path), projections=bumped())
    second = build_system(settings(database_url, tmp_path), projections=bumped())
    for system in (first, second):
        system.follower.upgrader.batch_size = 40
    seen: dict[str, Any] = {"statuses": set(), "ready": [], "progress": set(), "empty": 0}
    done = threading.Event()

    def count_rows() -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            while not done.is_set():
                if connection.execute("SELECT count(*) FROM dobby_proposals").fetchone() == (0,):
                    seen["empty"] += 1

    with running_app(create_app(first, background=True)) as client, started(second):
        counter = threading.Thread(target=count_rows)
        counter.start()
        try:
            index = 0
            while stored(first)["proposals"] == ProposalsProjection.version:
                index += 1
                traffic(client, proposals, index, seen)
            became_ready = eventually(lambda: client.get("/ready").json()["status"] == "ready")
        finally:
            done.set()
            counter.join()
        assert became_ready, client.get("/ready").json()
        assert stored(first)["proposals"] == BumpedProposals.version
        assert seen["statuses"] <= {200, 201}, seen["statuses"]
        assert seen["empty"] == 0
        named = (
            f"projection proposals: rebuilding from version {ProposalsProjection.version} to {BumpedProposals.version}"
        )
        assert any(named in detail for detail in seen["ready"]), seen["ready"]
        assert any(0 < share < 1 for share in seen["progress"]), seen["progress"]
        assert seen["console"], "the console's overview never showed the rebuild"
        rebuilt = [len(s.follower.upgrader.rebuilt.get("proposals", [])) for s in (first, second)]
        assert sorted(rebuilt) == [0, 1]
        assert all(not s.follower.upgrader.rebuilt.get("runs") for s in (first, second))
        assert not verify(first.store, first.engine.context.uow.log, "proposals")
        metrics = client.get("/metrics").text
        assert 'dobby_projection_rebuild_progress{projection="proposals"} 1.0' in metrics


def traffic(client: AppClient, proposals: list[dict[str, Any]], index: int, seen: dict[str, Any]) -> None:
    """One round of what clients do during the rebuild: a write, reads of the rebuilt projection, /ready, metrics."""
    answers = [
        client.post(INTAKE, json=intake_body(FAMILIES, trace_id=f"during-{index}")),
        client.get(f"/api/v1/learning/proposals/{proposals[index % len(proposals)]['proposal_id']}"),
        client.get("/api/v1/learning/proposals", params={"tenant_id": "acme"}),
    ]
    seen["statuses"] |= {answer.status_code for answer in answers}
    assert answers[2].json()["items"], "the live proposals table served nothing"
    seen["ready"].append(client.get("/ready").json()["detail"])
    console = client.get("/console")
    seen["statuses"].add(console.status_code)
    shown = f"rebuilding {ProposalsProjection.version} → {BumpedProposals.version}"
    seen["console"] = seen.get("console", False) or shown in console.text
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('dobby_projection_rebuild_progress{projection="proposals"}'):
            seen["progress"].add(float(line.split()[-1]))


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_process_whose_code_is_older_than_the_stored_version_leaves_the_projection_alone(
    database_url: str, tmp_path: Path
) -> None:
    seed(database_url)
    with make_system(database_url) as world, world.system.store.engine.begin() as connection:
        connection.execute(text("UPDATE dobby_projection_versions SET version = 99 WHERE name = 'proposals'"))
        before = world.system.store.positions()["proposals"]
    system = build_system(settings(database_url, tmp_path))
    with started(system):
        world_position = system.engine.position()
        record_runs(system.engine.context.uow.log, FAMILIES, 3, datetime(2026, 1, 1, tzinfo=UTC))
        assert eventually(lambda: system.store.positions()["runs"] == world_position + 3)
        assert system.store.positions()["proposals"] == before
        assert stored(system)["proposals"] == 99
        health = system.projection_health()["proposals"]
        assert health["stored_version"] == 99 and health["rebuilding"] is None
        assert system.follower.status["proposals"].skipped is not None
        if system.leadership.url is not None:
            assert eventually(lambda: "proposals" not in (system.leadership.leading() or set()))
            assert "runs" in (system.leadership.leading() or set())


class SlowProposals(ProposalsProjection):
    """Today's proposals projection, its shadow batches slowed down so that writes land while it rebuilds."""

    def apply(self, connection: Connection, tables: dict[str, Table], batch: Sequence[Recorded]) -> None:
        if tables["proposals"].name.endswith("__shadow"):
            time.sleep(0.02)
        super().apply(connection, tables, batch)


@pytest.mark.backends(["sqlite", "postgres"])
def test_writes_during_a_rebuild_into_a_table_of_an_older_shape_appear_at_the_swap_and_nothing_fails(
    database_url: str, tmp_path: Path
) -> None:
    seed(database_url, runs=600)
    with make_system(database_url) as world, world.system.store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE dobby_proposals DROP COLUMN created_at"))  # version 1 had none
        connection.execute(text("UPDATE dobby_projection_versions SET version = 1 WHERE name = 'proposals'"))
    projections = (
        RunsProjection(),
        ReplaysProjection(),
        SlowProposals(),
        CountersProjection(),
        TargetsProjection(),
        MerkleProjection(),
    )
    system = build_system(settings(database_url, tmp_path), projections=projections)
    system.follower.upgrader.batch_size = 20
    with running_app(create_app(system, background=True)) as client:
        assert eventually(lambda: system.follower.upgrader.rebuilding("proposals"))
        replay = client.post(
            f"{LEARNING}/replay/evaluate",
            json=replay_body(FAMILIES, target={"type": "prompt_template", "id": "during"}),
        ).json()
        proposal = client.post(
            f"{LEARNING}/promotions/propose",
            json=propose_body(replay["replay_id"], target={"type": "prompt_template", "id": "during"}),
        ).json()
        assert "proposal_id" in proposal, proposal
        failing = []
        while system.follower.upgrader.rebuilding("proposals"):
            failing.append(client.get("/ready").json()["projections"]["proposals"]["failing"])
        assert set(failing) <= {None}, failing
        assert stored(system)["proposals"] == ProposalsProjection.version
        head = system.engine.position()
        listed = client.get(f"{LEARNING}/proposals", params={"tenant_id": "acme", "min_position": head}).json()
        assert proposal["proposal_id"] in [item["proposal_id"] for item in listed["items"]]


@pytest.mark.backends(["sqlite"])
def test_projections_status_shows_a_rebuild_that_is_due(database_url: str) -> None:
    seed(database_url)
    with make_system(database_url) as world, world.system.store.engine.begin() as connection:
        connection.execute(text("DELETE FROM dobby_projection_versions WHERE name = 'proposals'"))
    done = run_cli(["projections", "status"], {"DOBBY_DATABASE_URL": database_url, "DOBBY_BOBBIN_PATH": ""})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["proposals"][3:6] == [f"0->{ProposalsProjection.version}", "0%", "rebuilt"], done.stdout
    assert rows["runs"][3:5] == [str(RunsProjection.version), "-"], done.stdout


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_targets_table_of_version_one_gains_the_tenant_index_at_start(database_url: str, tmp_path: Path) -> None:
    """Version 2 of the targets projection is its tenant index (OFREP bulk reads one tenant's targets): a table
    left by version 1, without it, is rebuilt with it at start, and reads the same."""
    proposals = seed(database_url)
    with make_system(database_url) as world:
        world.activate(proposals[0]["proposal_id"], actor="operator")
        catch_up(world.system)
        indexes = inspect(world.system.store.engine).get_indexes("dobby_targets")
        tenant_index = next(index["name"] for index in indexes if "tenant_id" in index["column_names"])
        before = world.system.queries.live_targets("acme")
        with world.system.store.engine.begin() as connection:
            connection.execute(text(f'DROP INDEX "{tenant_index}"'))
            connection.execute(text("UPDATE dobby_projection_versions SET version = 1 WHERE name = 'targets'"))
    system = build_system(settings(database_url, tmp_path))
    with started(system):
        assert eventually(lambda: stored(system)["targets"] == TargetsProjection.version == 2)
        indexed = {tuple(index["column_names"]) for index in inspect(system.store.engine).get_indexes("dobby_targets")}
        assert ("tenant_id", "target_type", "target_id") in indexed
        assert system.queries.live_targets("acme") == before and before
