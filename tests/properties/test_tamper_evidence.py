"""SPEC §11 as a property, on SQLite and PostgreSQL: after random lifecycle traffic, any single change made directly
in the database is reported by verify-log; a whole chain rewritten with recomputed hashes passes verify-log but
fails check-checkpoint against a checkpoint taken before; an untouched log passes both."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dobby.engine.audit.checkpoint import Checkpoint, extension_problems
from dobby.engine.audit.log_reading import read_entries
from dobby.engine.audit.verification import LogReport, check_log
from dobby.engine.kernel.errors import DobbyError
from tests import tampering
from tests.properties.test_engine_machine import fresh_storage
from tests.support import SystemWorld, intake_body, make_system, propose_body, replay_body

CHANGES = ["payload", "actor", "occurred_at", "delete", "reorder"]
OPERATIONS = st.lists(st.sampled_from(["intake", "lifecycle", "lifecycle", "rollback", "expire"]), max_size=5).map(
    lambda operations: ["intake", *operations]
)
EXAMPLES = {"sqlite": 30, "postgres": 20}


@contextmanager
def system_on(database_url: str) -> Iterator[SystemWorld]:
    fresh_storage(database_url)
    with make_system(database_url, replay_budget=100) as world:
        yield world


def drive(world: SystemWorld, operations: list[str]) -> None:
    """Random lifecycle traffic: runs, proposals carried to active, rollbacks and expiries."""
    counter = itertools.count()
    active: list[str] = []
    for operation in operations:
        number = next(counter)
        try:
            if operation == "intake":
                world.intake(intake_body(world.families, trace_id=f"trace-{number}"), actor="collector")
            elif operation == "lifecycle":
                target = {"type": "prompt_template", "id": f"target-{number}"}
                body = replay_body(world.families, target=target)
                body["metrics"]["candidate"]["latency_ms"] = 90 - number
                replay = world.evaluate_replay(body, actor="submitter").body
                proposal = world.propose(propose_body(replay["replay_id"], target=target), actor="proposer").body
                world.approve(proposal)
                world.approve_check(proposal["proposal_id"], actor="operator")
                world.activate(proposal["proposal_id"], actor="operator")
                active.append(proposal["proposal_id"])
            elif operation == "rollback" and active:
                world.rollback({"proposal_id": active.pop(), "reason": "worse"}, actor="operator")
            elif operation == "expire":
                world.clock.advance(8 * 86_400)
                world.system.expiry.tick()
        except DobbyError:
            pass
    world.catch_up()


def verify_log(world: SystemWorld) -> LogReport:
    return check_log(read_entries(world.log), positions=True, seen=world.system.digest.seen())


def check_checkpoint(world: SystemWorld, checkpoint: Checkpoint) -> list[str]:
    problems, _, _ = extension_problems(checkpoint, read_entries(world.log))
    return problems


def property_holds(database_url: str, data: st.DataObject) -> None:
    with system_on(database_url) as world:
        drive(world, data.draw(OPERATIONS, label="traffic"))
        checkpoint = world.system.digest.refresh()
        assert checkpoint is not None
        assert verify_log(world).ok, verify_log(world).problems
        assert check_checkpoint(world, checkpoint) == []
        size = world.engine.position()
        table = tampering.Table(world.log, world.system.store.engine)
        change = data.draw(st.sampled_from([*CHANGES, "rewrite"]), label="change")
        position = data.draw(st.integers(1, size), label="position")
        if change == "rewrite":
            stream = str(table.event(position).originator_id)
            table.rewrite_chain(stream, tampering.other_actor)
            assert verify_log(world).ok, verify_log(world).problems
            assert check_checkpoint(world, checkpoint) != []
            return
        if change == "payload":
            table.change(position, lambda event: tampering.other_payload(event, data.draw(st.integers(0, 50))))
        elif change == "actor":
            table.change(position, tampering.other_actor)
        elif change == "occurred_at":
            micros = data.draw(st.integers(-(10**9), 10**9).filter(bool), label="microseconds")
            table.change(position, lambda event: tampering.other_time(event, micros))
        elif change == "delete":
            table.delete(position)
        elif size > 1:
            other = data.draw(st.integers(1, size).filter(lambda p: p != position), label="other")
            table.swap(position, other)
        else:
            table.delete(position)
        report = verify_log(world)
        assert not report.ok, (change, position)


def examples(backend: str) -> settings:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@examples("sqlite")
@given(data=st.data())
def test_any_single_change_is_caught_on_sqlite(tmp_path: Path, data: st.DataObject) -> None:
    property_holds(f"sqlite:///{tmp_path / 'tamper.db'}", data)


@examples("postgres")
@given(data=st.data())
def test_any_single_change_is_caught_on_postgres(postgres_database: str, data: st.DataObject) -> None:
    property_holds(postgres_database, data)


@pytest.mark.parametrize("change", CHANGES)
def test_each_change_is_named_by_its_position(tmp_path: Path, change: str) -> None:
    with system_on(f"sqlite:///{tmp_path / 'named.db'}") as world:
        drive(world, ["lifecycle", "intake"])
        table = tampering.Table(world.log, world.system.store.engine)
        alter = {
            "payload": tampering.other_payload,
            "actor": tampering.other_actor,
            "occurred_at": tampering.other_time,
        }
        if change in alter:
            table.change(3, alter[change])
        elif change == "delete":
            table.delete(3)
        else:
            table.swap(3, 4)
        problems = verify_log(world).problems
        assert problems and all("position" in line for line in problems)
        assert any("position 3" in line or "positions 3" in line for line in problems), problems
