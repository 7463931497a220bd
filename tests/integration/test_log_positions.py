"""Log positions run 1, 2, 3… without a hole on every backend, also after saves that failed (SPEC §11: log
position P is leaf P−1 of the digest; a hole would read as a deleted event)."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from dobby.engine.audit.log_reading import read_entries, stream_positions
from dobby.engine.audit.verification import check_log
from tests.support import World, intake_body

pytestmark = pytest.mark.backends(["sqlite", "postgres"])


def stored(stream: uuid.UUID) -> StoredEvent:
    return StoredEvent(originator_id=stream, originator_version=1, topic="dobby.engine.run:RunRecorded", state=b"{}")


def test_a_failed_save_leaves_no_hole_in_the_positions(world: World) -> None:
    recorder = world.log.recorder
    taken = uuid.uuid4()
    recorder.insert_events([stored(taken)])
    for _ in range(3):
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(uuid.uuid4()), stored(taken)])
    recorder.insert_events([stored(uuid.uuid4())])
    assert [n.id for n in recorder.select_notifications(start=1, limit=10)] == [1, 2]


def test_engine_writes_keep_positions_dense_and_known_per_stream(world: World) -> None:
    for index in range(3):
        world.intake(intake_body(world.families, trace_id=f"trace-{index}"), actor="collector")
    report = check_log(read_entries(world.log), positions=True)
    assert report.ok and report.events == 3
    first = next(read_entries(world.log))
    assert stream_positions(world.log, uuid.UUID(first.stream_id)) == {1: 1}
