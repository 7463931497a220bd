"""The read side on every backend: catch-up, queries, rebuild, verify, expiry processor, Bobbin publisher."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from dobby.adapters.bobbin import BobbinProvenanceSink
from dobby.engine.kernel.errors import InvalidInputError, NotFoundError
from dobby.engine.kernel.ports import ProvenanceRecord
from dobby.projections.rebuild import rebuild, verify
from tests.support import (
    SystemWorld,
    approved_proposal,
    eventually,
    intake_body,
    make_system,
    passed_replay,
    propose_body,
    replay_body,
)


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


def populate(world: SystemWorld) -> dict[str, list[str]]:
    """A little of everything: runs, replays of each verdict, proposals in several states."""
    runs = [world.intake(intake_body(world.families, trace_id=f"t{i}"), actor="s").body["run_id"] for i in range(5)]
    active = approved_proposal(world, 0.90)
    world.activate(active["proposal_id"], actor="op")
    approved = approved_proposal(world, 0.91)
    pending = world.propose(propose_body(passed_replay(world, 0.92)["replay_id"]), actor="p").body
    world.evaluate_replay(replay_body(world.families, workload_similar=False), actor="s")
    proposals = [active["proposal_id"], approved["proposal_id"], pending["proposal_id"]]
    return {"runs": runs, "proposals": proposals}


def test_catch_up_gives_the_engine_views(world: SystemWorld) -> None:
    made = populate(world)
    world.catch_up()
    queries = world.system.queries
    for run_id in made["runs"]:
        assert queries.get_run(run_id) == world.get_run(run_id)
    for proposal_id in made["proposals"]:
        assert queries.get_proposal(proposal_id) == world.get_proposal(proposal_id)
    replays = queries.list_replays({"tenant_id": "acme", "limit": "500"}).items
    assert {r["verdict"] for r in replays} == {"passed", "rejected"}
    for replay in replays:
        assert replay == world.get_replay(replay["replay_id"])
    assert world.system.store.positions() == dict.fromkeys(
        ("runs", "replays", "proposals", "counters", "targets", "merkle"), world.engine.position()
    )


def test_counters_count_the_log(world: SystemWorld) -> None:
    populate(world)
    world.catch_up()
    counters = {(metric, labels): value for metric, labels, value in world.system.queries.counters_by_metric()}
    assert counters[("dobby_intake_total", '{"result":"accepted"}')] == 5
    assert counters[("dobby_learning_signals_total", "{}")] == 5
    assert counters[("dobby_replay_evaluations_total", '{"verdict":"passed"}')] == 3
    assert counters[("dobby_replay_evaluations_total", '{"verdict":"rejected"}')] == 1
    assert counters[("dobby_proposal_transitions_total", '{"to":"generated"}')] == 3
    assert counters[("dobby_proposal_transitions_total", '{"to":"approved"}')] == 2
    assert counters[("dobby_proposal_transitions_total", '{"to":"active"}')] == 1


def test_lists_filter_and_page_newest_first(world: SystemWorld) -> None:
    for index in range(7):
        world.intake(intake_body(world.families, trace_id=f"p{index}"), actor="s")
    world.intake(intake_body(world.families, tenant_id="other", trace_id="x"), actor="s")
    world.catch_up()
    queries = world.system.queries
    seen: list[str] = []
    cursor = None
    while True:
        filters = {"tenant_id": "acme", "limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = queries.list_runs(filters)
        seen += [item["trace_id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"p{index}" for index in reversed(range(7))]
    assert [r["tenant_id"] for r in queries.list_runs({"tenant_id": "other"}).items] == ["other"]
    assert queries.list_runs({}, tenants={"other"}).items[0]["trace_id"] == "x"


def test_bad_list_parameters_are_named(world: SystemWorld) -> None:
    with pytest.raises(InvalidInputError) as caught:
        world.system.queries.list_proposals(
            {"limit": "501", "cursor": "zz", "colour": "red", "revalidate_required": "maybe"}
        )
    assert {d["field"] for d in caught.value.details} == {"limit", "cursor", "colour", "revalidate_required"}
    with pytest.raises(NotFoundError):
        world.system.queries.get_proposal("nope")


def test_proposal_filters(world: SystemWorld) -> None:
    made = populate(world)
    world.catch_up()
    queries = world.system.queries
    assert [p["proposal_id"] for p in queries.list_proposals({"state": "active"}).items] == [made["proposals"][0]]
    assert len(queries.list_proposals({"target_type": "prompt_template", "target_id": "greeting"}).items) == 3
    assert queries.list_proposals({"revalidate_required": "true"}).items == []


def test_rebuild_swaps_in_equal_tables_and_verify_passes(world: SystemWorld) -> None:
    populate(world)
    world.catch_up()
    before = world.system.queries.list_proposals({"limit": "500"}).items
    for name in world.system.store.projections:
        report = rebuild(world.system.store, world.log, name)
        assert report.position == world.engine.position()
        assert verify(world.system.store, world.log, name) == []
    assert world.system.queries.list_proposals({"limit": "500"}).items == before


def test_verify_reports_a_tampered_row(world: SystemWorld) -> None:
    made = populate(world)
    world.catch_up()
    table = world.system.store.table("proposals", "proposals")
    with world.system.store.engine.begin() as connection:
        connection.execute(update(table).where(table.c.proposal_id == made["proposals"][0]).values(state="approved"))
    differences = verify(world.system.store, world.log, "proposals")
    assert len(differences) == 1 and made["proposals"][0] in differences[0]
    rebuild(world.system.store, world.log, "proposals")
    assert verify(world.system.store, world.log, "proposals") == []


@pytest.mark.backends(["sqlite", "postgres"])
def test_rebuild_while_commands_keep_writing(world: SystemWorld) -> None:
    populate(world)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        index = 0
        while not stop.is_set() and index < 400:
            body = intake_body(world.families, trace_id=f"w{index}")
            written.append(world.intake(body, actor="writer").body["run_id"])
            index += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        for name in ("runs", "counters", "proposals"):
            rebuild(world.system.store, world.log, name)
    finally:
        stop.set()
        thread.join()
    world.catch_up()
    for name in world.system.store.projections:
        assert verify(world.system.store, world.log, name) == []
    assert {r["run_id"] for r in world.system.queries.list_runs({"limit": "500"}).items} >= set(written)


class TestExpiryProcessor:
    @pytest.mark.backends(["sqlite", "postgres"])
    def test_ttl_expiry_happens_once_with_two_processors(self, world: SystemWorld) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"], ttl_seconds=60), actor="p").body
        world.catch_up()
        assert world.system.expiry.tick() == 0
        world.clock.advance(61)
        results = []
        threads = [threading.Thread(target=lambda: results.append(world.system.expiry.tick())) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [0, 1]
        history = world.get_history(proposal["proposal_id"])
        assert [e["type"] for e in history["events"]].count("Expired") == 1

    def test_fabric_drift_marks_then_expires_open_and_flags_active(self, world: SystemWorld) -> None:
        active = approved_proposal(world, 0.90)
        world.activate(active["proposal_id"], actor="op")
        waiting = world.propose(propose_body(passed_replay(world, 0.93)["replay_id"]), actor="p").body
        world.catch_up()
        world.governance.set_family("runtime.traces", "2.0")
        world.system.expiry.tick()
        assert world.get_proposal(waiting["proposal_id"])["state"] == "expired"
        flagged = world.get_proposal(active["proposal_id"])
        assert flagged["state"] == "active" and flagged["revalidate_required"] is True
        world.catch_up()
        assert world.system.expiry.tick() == 0


class TestProvenancePublisher:
    def test_one_line_per_approval_never_before(self, world: SystemWorld) -> None:
        replay = passed_replay(world)
        proposal = world.propose(propose_body(replay["replay_id"]), actor="p").body
        world.approve_check(proposal["proposal_id"], actor="op")
        world.catch_up()
        assert world.sink.records == []
        world.approve(proposal)
        world.approve_check(proposal["proposal_id"], actor="op")
        world.catch_up()
        assert [r.proposal_id for r in world.sink.records] == [proposal["proposal_id"]]
        record = world.sink.records[0]
        history = world.get_history(proposal["proposal_id"])
        assert record.event_hash == history["events"][-1]["event_hash"]
        assert record.candidate_hash == proposal["candidate_hash"]
        assert record.change_hash == proposal["change_hash"] == record.as_line()["change_hash"]


def test_bobbin_file_sink_dedupes_and_repairs_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "bobbin.jsonl"

    def record(pid: str) -> ProvenanceRecord:
        return ProvenanceRecord(
            pid,
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

    BobbinProvenanceSink(path).append(record("p1"))
    with path.open("ab") as torn:
        torn.write(b'{"marker":"bobbin","proposal_id":"p2"')
    sink = BobbinProvenanceSink(path)
    sink.append(record("p1"))
    sink.append(record("p2"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["proposal_id"] for line in lines] == ["p1", "p2"]
    assert json.loads(lines[0])["marker"] == "bobbin" and json.loads(lines[0])["schema"] == "dobby.provenance/v1"


@pytest.mark.backends(["sqlite", "postgres"])
def test_a_started_follower_tails_live_writes(world: SystemWorld) -> None:
    world.system.follower.start()
    try:
        for index in range(3):
            position = world.intake(intake_body(world.families, trace_id=f"live{index}"), actor="s").body["position"]
            assert world.system.store.wait_for(position, timeout=5.0)
        assert (
            world.system.queries.get_run(
                world.intake(intake_body(world.families, trace_id="live0"), actor="s").body["run_id"]
            )["trace_id"]
            == "live0"
        )
    finally:
        world.system.follower.stop()


@pytest.mark.backends(["postgres"])
def test_only_one_follower_leads_each_projection(database_url: str) -> None:
    with make_system(database_url) as first, make_system(database_url) as second:
        first.system.follower.start()
        try:
            assert eventually(lambda: all(s.leader for s in first.system.follower.status.values()), 10)
            second.system.follower.start()
            position = second.intake(intake_body(second.families), actor="s").body["position"]
            assert second.system.store.wait_for(position, timeout=5.0)
            assert not any(s.leader for s in second.system.follower.status.values())
        finally:
            second.system.follower.stop()
            first.system.follower.stop()


def test_a_failing_batch_is_retried_alone_and_its_error_is_visible(world: SystemWorld) -> None:
    """The supervisor's contract: a batch that raises leaves its position alone, records the error, backs off while
    the other projections go on, and a later step (after the cause is gone) resumes from the same position."""
    world.intake(intake_body(world.families), actor="s")
    follower = world.system.follower
    projection = world.system.store.projections["runs"]
    original = projection.apply

    def broken(*_: object) -> None:
        raise RuntimeError("disk on fire")

    projection.apply = broken  # type: ignore[method-assign,assignment]
    try:
        while follower.step():
            pass
        assert follower.status["runs"].last_error == "RuntimeError: disk on fire"
        assert world.system.store.errors()["runs"] == "RuntimeError: disk on fire"
        assert world.system.store.positions()["runs"] == 0
        assert world.system.store.positions()["counters"] == world.engine.position()
        failing, restarts = world.system.gauges()["runners"]["runs"]
        assert failing and restarts >= 1
    finally:
        projection.apply = original  # type: ignore[method-assign]
    assert eventually(lambda: follower.step() == 0 and follower.status["runs"].last_error is None)
    assert world.system.store.errors()["runs"] is None
    assert world.system.store.positions()["runs"] == world.engine.position()
