"""Scheduled activation (SPEC §12) on every backend: the processor fires at or after `not_before`, only when every
guard passes then, records each new set of failing guards once, and a stop holds it back until resumed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dobby.engine.commands.boundary import convert
from dobby.engine.commands.policy import TenantAction
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.commands.schedule import Activate, ScheduledAnswer
from dobby.engine.kernel.errors import InvalidInputError, InvalidStateError
from tests.support import SystemWorld, approved_proposal, make_system


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


def schedule(world: SystemWorld, proposal_id: str, seconds: float) -> Any:
    at = (world.clock() + timedelta(seconds=seconds)).isoformat()
    return world.engine.schedule.activate(convert({"proposal_id": proposal_id, "not_before": at}, Activate), actor="op")


def tick(world: SystemWorld) -> int:
    world.catch_up()
    acted = world.system.expiry.tick()
    world.catch_up()
    return acted


def events(world: SystemWorld, proposal_id: str) -> list[tuple[str, str]]:
    return [(e["type"], e["actor"]) for e in world.get_history(proposal_id)["events"]]


def test_a_scheduled_activation_fires_at_its_time_as_the_scheduler(world: SystemWorld) -> None:
    pid = approved_proposal(world)["proposal_id"]
    scheduled = schedule(world, pid, 3600)
    assert isinstance(scheduled, ScheduledAnswer) and scheduled.state == "approved"
    assert world.get_proposal(pid)["scheduled_for"] == scheduled.scheduled_for
    assert tick(world) == 0 and world.get_proposal(pid)["state"] == "approved"
    world.clock.advance(3599)
    assert tick(world) == 0
    world.clock.advance(1)
    assert tick(world) == 1
    view = world.get_proposal(pid)
    assert view["state"] == "active" and view["scheduled_for"] is None
    assert events(world, pid)[-2:] == [("ActivationScheduled", "op"), ("Activated", "dobby:scheduler")]


def test_a_stop_holds_it_back_once_recorded_then_it_fires_after_resume(world: SystemWorld) -> None:
    pid = approved_proposal(world)["proposal_id"]
    schedule(world, pid, 60)
    stop = convert({"tenant_id": "acme", "reason": "incident"}, TenantAction)
    world.engine.policy.stop(stop, actor="oncall")
    world.clock.advance(120)
    assert tick(world) == 0 and tick(world) == 0  # tried twice, recorded once
    skipped = [e for e in world.get_history(pid)["events"] if e["type"] == "ActivationSkipped"]
    assert len(skipped) == 1 and [f["guard"] for f in skipped[0]["payload"]["failed"]] == ["not_frozen"]
    world.engine.policy.resume(stop, actor="oncall")
    assert tick(world) == 1 and world.get_proposal(pid)["state"] == "active"


def test_past_replaced_and_cancelled_schedules(world: SystemWorld) -> None:
    now_pid = approved_proposal(world, 0.90)["proposal_id"]
    assert (
        world.engine.schedule.activate(
            convert({"proposal_id": now_pid, "not_before": world.clock().isoformat()}, Activate), actor="op"
        ).state
        == "active"
    )  # a not_before that is not in the future activates at once

    pid = approved_proposal(world, 0.91, target={"type": "prompt_template", "id": "other"})["proposal_id"]
    schedule(world, pid, 600)
    second = schedule(world, pid, 60)  # a second not_before replaces the first
    assert world.get_proposal(pid)["scheduled_for"] == second.scheduled_for
    world.engine.schedule.unschedule(ProposalRef(pid), actor="op")
    assert world.get_proposal(pid)["scheduled_for"] is None
    world.clock.advance(700)
    assert tick(world) == 0 and world.get_proposal(pid)["state"] == "approved"
    with pytest.raises(InvalidStateError):
        world.engine.schedule.unschedule(ProposalRef(pid), actor="op")


def test_a_schedule_past_the_approval_or_of_a_proposal_not_approved_is_refused(world: SystemWorld) -> None:
    pid = approved_proposal(world)["proposal_id"]
    with pytest.raises(InvalidInputError):
        schedule(world, pid, 25 * 3600)  # the approval expires after 24 h
    world.activate(pid, actor="op")
    with pytest.raises(InvalidStateError):
        schedule(world, pid, 60)
