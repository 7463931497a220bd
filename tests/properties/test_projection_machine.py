"""The engine state machine with the read side: catch-ups and rebuilds interleaved with random commands.

When a run ends, the projected tables must equal the engine's own views of every record (folded from the
event store by a different path), the durable counters must equal counts over the streams, and `verify`
must find no difference.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from dobby.engine.audit.checkpoint import extension_problems
from dobby.engine.audit.log_reading import read_entries
from dobby.engine.audit.verification import check_log
from dobby.engine.rules.lifecycle import TRANSITIONS
from dobby.projections.rebuild import rebuild, verify
from tests.properties.test_engine_machine import LIMITS, EngineMachine, run_machine
from tests.support import SystemWorld, make_system

TO_STATE = {event: state for (_, event), state in TRANSITIONS.items()}


class ProjectedMachine(EngineMachine):
    world: SystemWorld

    def build_world(self) -> Any:
        return make_system(self.database_url, **LIMITS)

    @rule()
    def projections_catch_up(self) -> None:
        self.world.step()

    @rule(name=st.sampled_from(["runs", "replays", "proposals", "counters", "targets", "merkle"]))
    def operator_rebuilds(self, name: str) -> None:
        rebuild(self.world.system.store, self.world.log, name)

    def teardown(self) -> None:
        try:
            self.tables_equal_a_fresh_fold()
        finally:
            super().teardown()

    def tables_equal_a_fresh_fold(self) -> None:
        world, queries = self.world, self.world.system.queries
        world.catch_up()
        for pid in self.proposals:
            assert queries.get_proposal(pid) == world.get_proposal(pid)
        for replay in self.replays:
            assert queries.get_replay(replay["replay_id"]) == world.get_replay(replay["replay_id"])
        transitions: Counter[str] = Counter()
        for pid in self.proposals:
            for event in world.uow.stream(uuid.UUID(pid)):
                if event.type_name in TO_STATE:
                    transitions[TO_STATE[event.type_name]] += 1
        counted = {
            labels: value
            for metric, labels, value in queries.counters_by_metric()
            if metric == "dobby_proposal_transitions_total"
        }
        assert {key: counted.get(f'{{"to":"{key}"}}', 0) for key in transitions} == dict(transitions)
        for name in world.system.store.projections:
            assert verify(world.system.store, world.log, name) == []
        self.the_digest_is_the_log_s_own()

    def the_digest_is_the_log_s_own(self) -> None:
        """The signed tree is the tree of the events as stored, and the log verifies against where it saw them."""
        digest = self.world.system.digest
        checkpoint = digest.refresh()
        assert checkpoint is not None and checkpoint.tree_size == self.world.engine.position()
        problems, size, root = extension_problems(checkpoint, read_entries(self.world.log))
        assert problems == [] and size == checkpoint.tree_size and root.hex() == checkpoint.root
        report = check_log(read_entries(self.world.log), positions=True, seen=digest.seen())
        assert report.problems == [] and report.legacy_events == 0


def test_projections_machine_in_memory() -> None:
    run_machine("memory://", 40, ProjectedMachine)


def test_projections_machine_on_sqlite(tmp_path: Path) -> None:
    run_machine(f"sqlite:///{tmp_path / 'projected.db'}", 6, ProjectedMachine)


def test_projections_machine_on_postgres(postgres_database: str) -> None:
    run_machine(postgres_database, 6, ProjectedMachine)
