"""Group commit: concurrent saves share transactions, and a conflict fails only its real loser."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from dobby.engine.model.ledger import Ledger
from dobby.engine.store.group_commit import GroupCommitter
from tests.support import intake_body, make_world, race, run_coroutine


def opening_events() -> list[Any]:
    """The first event of a new stream: saving it twice is a version conflict."""
    ledger = Ledger.open(uuid4(), "replay_budget", {}, actor="t", at=datetime.now(UTC))
    return list(ledger.collect_events())


@pytest.mark.backends(["memory", "sqlite", "postgres"])
def test_concurrent_saves_are_merged_and_each_caller_gets_its_own_position(database_url: str) -> None:
    with make_world(database_url) as world:
        committer = world.uow.committer
        assert committer is not None
        bodies = [intake_body(world.families, trace_id=f"gc-{index}") for index in range(64)]
        results = race([partial(world.intake, b, actor="load") for b in bodies])
        positions = [r.body["position"] for r in results if not isinstance(r, Exception)]
        assert len(set(positions)) == 64, results
        assert committer.saves >= 64 and committer.batches < committer.saves
        stored = world.log.recorder.select_notifications(start=None, limit=1000)
        assert len(stored) == 64 and {n.id for n in stored} == set(positions)


@pytest.mark.backends(["memory", "sqlite", "postgres"])
def test_a_conflicting_member_fails_alone(database_url: str) -> None:
    with make_world(database_url) as world:
        log = world.log
        committer = GroupCommitter(log, max_wait=0.05)
        try:
            first = opening_events()
            other = opening_events()
            outcomes = race([partial(committer.save, events) for events in (first, first, other)])
            errors = [o for o in outcomes if isinstance(o, Exception)]
            assert len(errors) == 1 and isinstance(errors[0], IntegrityError), outcomes
            assert committer.batches >= 1
            assert len(log.recorder.select_notifications(start=None, limit=10)) == 2
        finally:
            committer.close()


@pytest.mark.backends(["sqlite", "postgres"])
def test_group_commit_off_still_holds_the_rules(database_url: str) -> None:
    with make_world(database_url, group_commit=False) as world:
        assert world.uow.committer is None
        results = race([partial(world.intake, intake_body(world.families), actor="s")] * 8)
        answers = [r for r in results if not isinstance(r, Exception)]
        assert len(answers) == 8 and sum(r.created for r in answers) == 1, results


@pytest.mark.backends(["sqlite", "postgres"])
def test_callers_on_an_event_loop_get_their_own_answers_back_on_that_loop(database_url: str) -> None:
    with make_world(database_url) as world:
        committer = GroupCommitter(world.log, max_wait=0.01)

        async def many() -> list[int | BaseException]:
            waiters = [committer.submit_async(opening_events()) for _ in range(40)]
            clash = opening_events()
            waiters += [committer.submit_async(clash), committer.submit_async(clash)]
            return await asyncio.gather(*waiters, return_exceptions=True)

        try:
            outcomes = run_coroutine(many)
        finally:
            committer.close()
        positions = [o for o in outcomes if isinstance(o, int)]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(positions) == 41 and len(set(positions)) == 41
        assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
        stored = {n.id for n in world.log.recorder.select_notifications(start=None, limit=100)}
        assert stored == set(positions)
        assert committer.batches < committer.saves  # answers of one batch reached the loop together


@pytest.mark.backends(["sqlite"])
def test_a_save_withdrawn_by_its_caller_before_it_was_written_is_not_written(database_url: str) -> None:
    with make_world(database_url) as world:
        committer = GroupCommitter(world.log)
        blocker, writing = threading.Event(), threading.Event()
        original = world.log.save

        def slow_save(*events: Any) -> Any:
            writing.set()
            blocker.wait(5)
            return original(*events)

        world.log.save = slow_save  # type: ignore[method-assign, assignment]

        async def withdraw() -> None:
            committer.submit_async(opening_events())  # holds the writer in slow_save
            assert await asyncio.to_thread(writing.wait, 5)
            waiter = committer.submit_async(opening_events())
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await waiter
            blocker.set()

        try:
            run_coroutine(withdraw)
        finally:
            committer.close()
        assert len(world.log.recorder.select_notifications(start=None, limit=10)) == 1


@pytest.mark.backends(["memory", "sqlite", "postgres"])
def test_a_head_asked_beside_saves_is_read_after_them_on_the_writer(database_url: str) -> None:
    """What a sampled-out trace answers: the head, never behind a write acknowledged before it was asked."""
    with make_world(database_url) as world:
        committer = GroupCommitter(world.log, max_wait=0.01)

        async def mixed() -> tuple[list[int], list[int], int]:
            first = await committer.submit_async(opening_events())
            saves = [committer.submit_async(opening_events()) for _ in range(10)]
            heads = [committer.head_async() for _ in range(5)]
            alone = await committer.head_async()
            return [first, *await asyncio.gather(*saves)], list(await asyncio.gather(*heads)), alone

        try:
            written, heads, alone = run_coroutine(mixed)
        finally:
            committer.close()
        assert all(head >= written[0] for head in heads), (written, heads)
        assert alone == max(written) == world.log.recorder.max_notification_id()
