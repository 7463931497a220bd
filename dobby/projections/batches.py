"""Batches of the event log: reading them (once per round, shared by every runner), folding one into a projection
inside a transaction that moves its tracked position, and catching a projection up to the head."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, text

from dobby.engine.model.chain import ChainedEvent
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.store import ProjectionStore, lock_position, set_position
from dobby.projections.views import Projection, Recorded

BATCH_SIZE = 500


def read_batch(log: EventLog, after: int, limit: int, stop: int | None = None) -> list[Recorded]:
    notifications = log.recorder.select_notifications(start=after, limit=limit, stop=stop, inclusive_of_start=False)
    batch = []
    for notification in notifications:
        event = log.mapper.to_domain_event(notification)
        assert isinstance(event, ChainedEvent) and notification.id is not None
        batch.append(Recorded(notification.id, event))
    return batch


Reader = Callable[[int], list[Recorded]]
"""The recorded events after a position, in log order (at most one batch)."""


@dataclass
class SharedRead:
    """One read of the log per round, shared by every runner, so each event is fetched and decoded once however
    many projections fold it. `prime` reads from the lowest position any runner will ask for; a runner that asks
    for a position the read does not cover (behind its start, or at the end of a full batch) reads for itself."""

    log: EventLog
    limit: int = BATCH_SIZE
    start: int | None = None
    batch: list[Recorded] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def prime(self, after: int) -> None:
        self.start = after
        self.batch = read_batch(self.log, after, self.limit)
        self.positions = [recorded.position for recorded in self.batch]

    def __call__(self, after: int) -> list[Recorded]:
        full = len(self.batch) >= self.limit
        if self.start is None or after < self.start or (full and after >= self.positions[-1]):
            return read_batch(self.log, after, self.limit)
        return self.batch[bisect.bisect_right(self.positions, after) :]


def apply_batch(
    connection: Connection,
    store: ProjectionStore,
    log: EventLog,
    projection: Projection,
    *,
    tables: dict[str, Table],
    tracking_name: str,
    limit: int = BATCH_SIZE,
    read: Reader | None = None,
) -> int:
    """One batch inside the caller's transaction: lock the position, fold, move the position. Returns events read."""
    position = lock_position(connection, store.tracking, tracking_name)
    if store.is_postgres:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
    batch = read(position) if read is not None else read_batch(log, position, limit)
    if not batch:
        return 0
    projection.apply(connection, tables, batch)
    set_position(connection, store.tracking, tracking_name, batch[-1].position)
    return len(batch)


def catch_up(
    store: ProjectionStore,
    log: EventLog,
    projection: Projection,
    *,
    tables: dict[str, Table] | None = None,
    tracking_name: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fold batches, one transaction each, until the log is exhausted. Returns the number of events read."""
    total = 0
    while True:
        with store.writer.begin() as connection:
            count = apply_batch(
                connection,
                store,
                log,
                projection,
                tables=tables or store.live[projection.name],
                tracking_name=tracking_name or projection.name,
                limit=batch_size,
            )
        if count == 0:
            return total
        total += count
        if progress is not None:
            progress(count)
