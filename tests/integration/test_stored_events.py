"""How events are stored: dobby's envelope mapper reads what the library's mapper wrote and the other way round,
and nothing a client sends inside a payload is ever interpreted when it is read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper

from dobby.engine.store.stored_events import EventMapper
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.rebuild import verify
from tests.support import (
    SystemWorld,
    approved_proposal,
    intake_body,
    make_system,
    passed_replay,
    propose_body,
)

# Objects the library's transcoder would have turned into a UUID, a datetime, or an error that stops every reader.
HOSTILE_OBJECTS: list[dict[str, Any]] = [
    {"_type_": "nope", "_data_": 1},
    {"_type_": "uuid_hex", "_data_": "6f0e3c8a3d1b5c539a571d0bb0b7d0b1"},
    {"_type_": "datetime_iso", "_data_": "not a date"},
    {"_type_": "dobby_ledger_state", "_data_": {"kind": "x"}},
    {"_type_": "tuple_as_list", "_data_": [1, 2]},
]


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


def library_mapper(log: EventLog) -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    log.register_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


def lifecycle(world: SystemWorld) -> None:
    world.intake(intake_body(world.families, trace_id="t-1"), actor="s")
    active = approved_proposal(world, 0.90)
    world.activate(active["proposal_id"], actor="op")
    world.rollback({"proposal_id": active["proposal_id"], "reason": "regressed"}, actor="op")
    world.propose(propose_body(passed_replay(world, 0.92)["replay_id"]), actor="p")


def test_both_mappers_read_every_event_alike(world: SystemWorld) -> None:
    lifecycle(world)
    log = world.log
    ours, theirs = log.mapper, library_mapper(log)
    assert isinstance(ours, EventMapper)
    notifications = log.recorder.select_notifications(start=1, limit=1000)
    assert len({n.topic for n in notifications}) >= 8
    for notification in notifications:
        event = ours.to_domain_event(notification)
        assert event.__dict__ == theirs.to_domain_event(notification).__dict__
        assert type(event) is type(theirs.to_domain_event(notification))
        # and what each writes, the other reads back as the same event
        assert theirs.to_domain_event(ours.to_stored_event(event)).__dict__ == event.__dict__
        assert ours.to_domain_event(theirs.to_stored_event(event)).__dict__ == event.__dict__


@pytest.mark.parametrize("hostile", HOSTILE_OBJECTS, ids=lambda value: str(value["_type_"]))
def test_a_payload_is_read_back_as_it_was_sent(world: SystemWorld, hostile: dict[str, Any]) -> None:
    body = intake_body(world.families, steps=[{"name": "s", "attributes": {"wrapped": hostile, **hostile}}])
    run = world.intake(body, actor="s").body
    replay = passed_replay(world, change={"prompt": hostile})
    proposal = world.propose(propose_body(replay["replay_id"], change=None, baseline=hostile), actor="p").body
    world.catch_up()  # every runner folds the events (it fails the test if one cannot)
    stored = world.get_run(run["run_id"])
    assert stored == world.system.queries.get_run(run["run_id"])
    assert world.system.queries.get_proposal(proposal["proposal_id"]) == world.get_proposal(proposal["proposal_id"])
    steps: list[dict[str, Any]] = world.log.repository.get(UUID(run["run_id"])).state.body["steps"]
    assert steps[0]["attributes"] == {"wrapped": hostile, **hostile}
    assert world.uow.verify_stream(UUID(run["run_id"]))
    assert world.uow.verify_stream(UUID(proposal["proposal_id"]))
    for name in world.system.store.projections:
        assert verify(world.system.store, world.log, name) == [], name
