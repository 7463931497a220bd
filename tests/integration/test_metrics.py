"""Metrics that every process agrees on: durable refusal tallies beside the counters projection."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData

from dobby.http.app import create_app
from dobby.projections.tables import tallies_table
from dobby.projections.tallies import DurableTallies
from tests.support import SystemWorld, intake_body, make_system, running_app

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


@pytest.fixture
def world(database_url: str) -> Iterator[SystemWorld]:
    with make_system(database_url) as built:
        yield built


def samples(world: SystemWorld, prefix: str) -> dict[str, float]:
    """The samples of /metrics whose line starts with `prefix`, keyed by the rest of the sample's name."""
    with running_app(create_app(world.system), lifespan=False) as client:
        text = client.get("/metrics").text
    found = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            found[name.removeprefix(prefix)] = float(value)
    return found


def intake_totals(world: SystemWorld) -> dict[str, float]:
    return samples(world, "dobby_intake_total")


class TestDurableTallies:
    def test_refusals_are_the_same_on_every_process_and_survive_restarts(self, database_url: str) -> None:
        with make_system(database_url) as first, make_system(database_url) as second:
            first.engine.intake_signal(intake_body(first.families), actor="s")
            first.catch_up()
            for _ in range(3):
                first.system.tallies.count("dobby_intake_total", {"result": "rejected"})
            second.system.tallies.add("dobby_intake_total", result="duplicate")
            second.system.tallies.add("dobby_activation_denials_total", reason="conflict")
            assert intake_totals(first) == {'{result="accepted"}': 1.0}  # counted, not yet durable
            assert first.system.tallies.flush() == 3
            assert second.system.tallies.flush() == 2
            expected = {'{result="accepted"}': 1.0, '{result="duplicate"}': 1.0, '{result="rejected"}': 3.0}
            assert intake_totals(first) == intake_totals(second) == expected
            first.system.tallies.count("dobby_intake_total", {"result": "sampled_out"})
        with make_system(database_url) as restarted:
            assert intake_totals(restarted) == {**expected, '{result="sampled_out"}': 1.0}  # flushed at shutdown
            assert samples(restarted, "dobby_activation_denials_total") == {'{reason="conflict"}': 1.0}

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
