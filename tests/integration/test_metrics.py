"""Metrics that every process agrees on: durable refusal tallies beside the counters projection, and the
revalidation gauges read from the proposals projection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData

from dobby.http.app import create_app
from dobby.projections.tables import tallies_table
from dobby.runtime.tallies import DurableTallies
from tests.support import (
    SystemWorld,
    approved_proposal,
    intake_body,
    make_system,
    passed_replay,
    propose_body,
    replay_body,
    running_app,
    samples,
)

pytestmark = pytest.mark.backends(["sqlite", "postgres"])
GREETING = {"type": "prompt_template", "id": "greeting"}
FAREWELL = {"type": "prompt_template", "id": "farewell"}


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


def get(world: SystemWorld, path: str) -> httpx.Response:
    with running_app(create_app(world.system), lifespan=False) as client:
        return client.get(path)


def scraped(world: SystemWorld, prefix: str) -> dict[str, float]:
    """The samples of /metrics whose name starts with `prefix`, keyed by the rest of the sample's name."""
    return samples(get(world, "/metrics").text, prefix)


def intake_totals(world: SystemWorld) -> dict[str, float]:
    return scraped(world, "dobby_intake_total")


class TestDurableTallies:
    def test_refusals_are_the_same_on_every_process_and_survive_restarts(self, database_url: str) -> None:
        with make_system(database_url) as first, make_system(database_url) as second:
            first.intake(intake_body(first.families), actor="s")
            first.catch_up()
            for _ in range(3):
                first.system.tallies.count("dobby_intake_total", {"result": "rejected"})
            second.system.tallies.count("dobby_intake_total", {"result": "duplicate"})
            second.system.tallies.count("dobby_activation_denials_total", {"reason": "conflict"})
            assert intake_totals(first) == {'{result="accepted"}': 1.0}  # counted, not yet durable
            assert first.system.tallies.flush() == 3
            assert second.system.tallies.flush() == 2
            expected = {'{result="accepted"}': 1.0, '{result="duplicate"}': 1.0, '{result="rejected"}': 3.0}
            assert intake_totals(first) == intake_totals(second) == expected
            first.system.tallies.count("dobby_intake_total", {"result": "sampled_out"})
        with make_system(database_url) as restarted:
            assert intake_totals(restarted) == {**expected, '{result="sampled_out"}': 1.0}  # flushed at shutdown
            assert scraped(restarted, "dobby_activation_denials_total") == {'{reason="conflict"}': 1.0}

    def test_a_failed_flush_keeps_its_counts_for_the_next(self, world: SystemWorld) -> None:
        table = tallies_table(MetaData())
        tallies = DurableTallies(world.system.store.engine, table)
        with world.system.store.engine.begin() as connection:
            table.drop(connection)
        tallies.count("dobby_intake_total", {"result": "rejected"})
        with pytest.raises(Exception, match="dobby_tallies"):
            tallies.flush()
        tallies.count("dobby_intake_total", {"result": "rejected"})
        assert tallies.pending == 2
        with world.system.store.engine.begin() as connection:
            table.create(connection)
        assert tallies.flush() == 2
        assert tallies.totals() == [("dobby_intake_total", '{"result":"rejected"}', 2)]

    def test_counts_made_while_flushing_from_many_threads_are_all_kept(self, world: SystemWorld) -> None:
        tallies = world.system.tallies
        tallies.start()
        labels = [{"result": "rejected"}, {"result": "duplicate"}]

        def count() -> None:
            for index in range(2000):
                tallies.count("dobby_intake_total", labels[index % 2])

        threads = [threading.Thread(target=count) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tallies.stop()
        assert sorted(tallies.totals()) == [
            ("dobby_intake_total", '{"result":"duplicate"}', 4000),
            ("dobby_intake_total", '{"result":"rejected"}', 4000),
        ]


def active_proposal(world: SystemWorld, tenant: str, target: dict[str, str], accuracy: float) -> dict[str, Any]:
    replay = passed_replay(world, accuracy, tenant_id=tenant, target=target)
    proposal = world.propose(propose_body(replay["replay_id"], tenant_id=tenant, target=target), actor="p").body
    world.approve(proposal)
    world.approve_check(proposal["proposal_id"], actor="op")
    world.activate(proposal["proposal_id"], actor="op")
    return proposal


def test_revalidation_gauges_count_open_and_active_flagged_proposals(world: SystemWorld) -> None:
    flagged_active = active_proposal(world, "acme", GREETING, 0.90)
    active_proposal(world, "beta", GREETING, 0.91)
    open_flagged = approved_proposal(world, 0.92)
    open_unflagged = world.propose(
        propose_body(passed_replay(world, 0.93, target=FAREWELL)["replay_id"], target=FAREWELL), actor="p"
    ).body
    drifted = {**world.families, "runtime.traces": "9.9"}
    verdict = world.evaluate_replay(replay_body(drifted), actor="s").body["verdict"]
    assert verdict == "revalidate_required"  # flags every open or active proposal on acme's greeting
    world.catch_up()
    assert scraped(world, "dobby_replay_queue_depth") == {"": 1.0}
    assert get(world, "/ready").json()["queue_depth"] == 1
    assert scraped(world, "dobby_active_revalidate_required") == {'{tenant_id="acme"}': 1.0, '{tenant_id="beta"}': 0.0}
    assert world.system.queries.get_proposal(open_unflagged["proposal_id"])["revalidate_required"] is False

    world.system.expiry.tick()
    world.catch_up()
    assert world.system.queries.get_proposal(open_flagged["proposal_id"])["state"] == "expired"
    assert scraped(world, "dobby_replay_queue_depth") == {"": 0.0}
    assert scraped(world, "dobby_active_revalidate_required")['{tenant_id="acme"}'] == 1.0  # not rolled back

    world.rollback({"proposal_id": flagged_active["proposal_id"], "reason": "revalidate"}, actor="op")
    world.catch_up()
    assert scraped(world, "dobby_active_revalidate_required") == {'{tenant_id="beta"}': 0.0}
