"""Every stored event type is declared once, as its payload Struct, and keeps the name the log knows it by (SPEC §13,
STYLE.md rules 15 and 18)."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from dobby.engine.model.chain import ChainedCreated, ChainedEvent
from dobby.engine.model.ledger import Spent
from dobby.engine.model.payloads import EVENT_PAYLOADS, STREAMS
from dobby.engine.model.target import Target

PACKAGE = Path(__file__).resolve().parents[2] / "dobby"

OPENED_BY = {
    "dobby.engine.run:Run": "dobby.engine.run:RunRecorded",
    "dobby.engine.replay:Replay": "dobby.engine.replay:ReplayEvaluated",
    "dobby.engine.proposal:Proposal": "dobby.engine.proposal:Generated",
    "dobby.engine.target:Target": "dobby.engine.target:TargetOpened",
    "dobby.engine.ledger:Ledger": "dobby.engine.ledger:LedgerOpened",
    "dobby.engine.policy:TenantPolicy": "dobby.engine.policy:PolicyOpened",
    "dobby.engine.policy:FreezeFile": "dobby.engine.policy:FreezeFiled",
}
"""Each stream's name in the log and the name of the event that opens it, as the first releases wrote them."""

LATER_EVENTS = {
    "dobby.engine.proposal:ReplayValidated",
    "dobby.engine.proposal:ApprovalChecked",
    "dobby.engine.proposal:Approved",
    "dobby.engine.proposal:Blocked",
    "dobby.engine.proposal:Activated",
    "dobby.engine.proposal:RolledBack",
    "dobby.engine.proposal:Expired",
    "dobby.engine.proposal:RevalidationRequired",
    "dobby.engine.proposal:Observed",
    "dobby.engine.proposal:ActivationScheduled",
    "dobby.engine.proposal:ActivationUnscheduled",
    "dobby.engine.proposal:ActivationSkipped",
    "dobby.engine.target:ProposalAttached",
    "dobby.engine.target:ProposalDetached",
    "dobby.engine.target:ProposalWentLive",
    "dobby.engine.target:BaselineRestored",
    "dobby.engine.target:RevalidationDemanded",
    "dobby.engine.ledger:Spent",
    "dobby.engine.policy:FreezeDeclared",
    "dobby.engine.policy:FreezeLifted",
    "dobby.engine.policy:ActivationsStopped",
    "dobby.engine.policy:ActivationsResumed",
}
"""Every other stored event type by its name in the log."""

EVENTS = [event for stream in STREAMS for event in stream.events]


def test_every_stream_and_event_keeps_its_name_in_the_log() -> None:
    """The names the mapper writes (get_topic) and reads back (resolve_topic), whichever module holds the code."""
    assert {get_topic(stream): get_topic(stream.events[0]) for stream in STREAMS} == OPENED_BY
    assert {get_topic(event) for stream in STREAMS for event in stream.events[1:]} == LATER_EVENTS
    kinds: list[type] = [*STREAMS, *EVENTS]
    for kind in kinds:
        assert resolve_topic(get_topic(kind)) is kind


def test_only_the_first_event_of_a_stream_opens_it() -> None:
    for stream in STREAMS:
        first, *then = stream.events
        assert issubclass(first, ChainedCreated)
        assert not any(issubclass(event, ChainedCreated) for event in then)


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.__name__)
def test_each_event_class_is_derived_from_its_payload_struct(event: type[ChainedEvent]) -> None:
    payload = event.payload_type
    assert payload.Event is event
    assert (event.__name__, event.__qualname__, event.__module__) == (
        payload.__name__,
        payload.__qualname__,
        payload.__module__,
    )
    assert event.__doc__ == payload.__doc__ and payload.__doc__, f"{payload.__name__} says what it means"
    assert EVENT_PAYLOADS[payload.__name__] is payload


def test_no_event_is_declared_twice_in_the_code() -> None:
    """Nobody writes a marker class beside a payload again: each event name is one class statement in dobby/."""
    declared = Counter(
        node.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    )
    assert len(EVENTS) == len(EVENT_PAYLOADS) == 29
    assert {name: declared[name] for name in EVENT_PAYLOADS} == dict.fromkeys(EVENT_PAYLOADS, 1)


def test_an_aggregate_records_only_the_events_of_its_own_stream() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    target = Target.open(uuid4(), "acme", {"type": "prompt", "id": "greeting"}, actor="a", at=now)
    with pytest.raises(AssertionError, match="Target does not record Spent"):
        target.record(Spent("2026-01-01T00:00:00.000000Z", "r", 60.0), actor="a", at=now)
    assert len(target.pending_events) == 1


def test_no_isinstance_asks_whether_an_event_is_its_payload_struct() -> None:
    """`isinstance(event, Approved)` is always false (the event's class is `Approved.Event`) and no type checker
    says so: every such check names the derived class."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in sorted([*(root / "dobby").rglob("*.py"), *(root / "tests").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                under_attribute = {id(sub.value) for sub in ast.walk(node.args[1]) if isinstance(sub, ast.Attribute)}
                named = {
                    name.id
                    for name in ast.walk(node.args[1])
                    if isinstance(name, ast.Name) and id(name) not in under_attribute
                }
                offenders += [f"{path.relative_to(root)}:{node.lineno} {name}" for name in named & set(EVENT_PAYLOADS)]
    assert offenders == []
