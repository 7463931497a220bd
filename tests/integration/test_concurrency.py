"""Cross-aggregate rules under real concurrency: threads racing on SQLite and PostgreSQL."""

from __future__ import annotations

from functools import partial

import pytest

from dobby.engine.kernel.errors import DobbyError, RuleViolationError
from tests.support import TARGET, approved_proposal, intake_body, make_world, race, replay_body

THREADS = 8


@pytest.mark.backends(["sqlite", "postgres"])
def test_eight_activations_on_one_target_exactly_one_wins(database_url: str) -> None:
    with make_world(database_url, promotion_velocity_max=100) as world:
        proposals = [approved_proposal(world, 0.90 + index / 1000) for index in range(THREADS)]
        results = race([partial(world.activate, p["proposal_id"], actor="op") for p in proposals])
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1
        assert all(isinstance(e, RuleViolationError) and e.code == "conflict" for e in losers), losers
        states = [world.get_proposal(p["proposal_id"])["state"] for p in proposals]
        assert states.count("active") == 1
        target = world.get_target("acme", TARGET["type"], TARGET["id"])
        assert target is not None and target["active_proposal_id"] == winners[0].body["proposal_id"]


@pytest.mark.backends(["sqlite", "postgres"])
def test_eight_replays_never_overspend_one_budget(database_url: str) -> None:
    budget = 5
    with make_world(database_url, replay_budget=budget) as world:
        bodies = []
        for index in range(THREADS):
            body = replay_body(world.families)
            body["metrics"]["candidate"]["accuracy"] = 0.9 + index / 1000
            bodies.append(body)
        results = race([partial(world.evaluate_replay, b, actor="svc") for b in bodies])
        passed = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(passed) == budget
        assert all(isinstance(e, RuleViolationError) and e.code == "replay_budget_exhausted" for e in refused)
        assert sorted(r.body["budget"]["remaining"] for r in passed) == list(range(budget))


@pytest.mark.backends(["sqlite", "postgres"])
def test_identical_intakes_at_once_store_one_run(database_url: str) -> None:
    with make_world(database_url) as world:
        results = race([lambda: world.intake(intake_body(world.families), actor="svc")] * THREADS)
        answers = [r for r in results if not isinstance(r, Exception)]
        assert len(answers) == THREADS, results
        assert sum(r.created for r in answers) == 1
        assert len({r.body["run_id"] for r in answers}) == 1
        stored = world.log.recorder.select_notifications(start=None, limit=100)
        assert len(stored) == 1


@pytest.mark.backends(["sqlite", "postgres"])
def test_rollbacks_racing_activations_never_break_the_target(database_url: str) -> None:
    """A rollback that read its proposal before a concurrent rollback and re-activation must retry, not fail."""
    with make_world(database_url, promotion_velocity_max=1000, replay_budget=1000) as world:
        for round_ in range(5):
            first = approved_proposal(world, 0.90 + round_ / 100)
            second = approved_proposal(world, 0.905 + round_ / 100)
            world.activate(first["proposal_id"], actor="op")
            results = race(
                [
                    partial(world.rollback, {"proposal_id": first["proposal_id"], "reason": "race"}, actor="a"),
                    partial(world.rollback, {"proposal_id": first["proposal_id"], "reason": "race"}, actor="b"),
                    partial(world.activate, second["proposal_id"], actor="c"),
                ]
            )
            unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, DobbyError)]
            assert not unexpected, unexpected
            rollbacks, activation = results[:2], results[2]
            refused = [r.code for r in rollbacks if isinstance(r, DobbyError)]
            assert refused == ["invalid_state"], refused  # exactly one rollback wins, the other finds it rolled back
            if isinstance(activation, DobbyError):
                assert activation.code == "conflict", activation  # it ran before the winning rollback
            target = world.get_target("acme", TARGET["type"], TARGET["id"])
            active = [p for p in (first, second) if world.get_proposal(p["proposal_id"])["state"] == "active"]
            assert target is not None and target["active_proposal_id"] == (active[0]["proposal_id"] if active else None)
            if active:
                world.rollback({"proposal_id": active[0]["proposal_id"], "reason": "next round"}, actor="op")
