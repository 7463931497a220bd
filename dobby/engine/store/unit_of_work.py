"""The one thing every command family shares: load streams, save every touched stream at once, retry on conflict."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, PersistenceError

from dobby.engine.audit.verification import chain_is_valid
from dobby.engine.kernel.errors import ConcurrentModificationError, ServiceUnavailableError, StaleReadError
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent
from dobby.engine.model.ledger import Ledger
from dobby.engine.model.target import Target
from dobby.engine.store.group_commit import BackpressureError, CommitTimeoutError, GroupCommitter
from dobby.engine.store.snapshots import SNAPSHOT_INTERVAL, crossed_interval, register_state_transcodings
from dobby.engine.store.stored_events import EventMapper

A = TypeVar("A", bound=ChainedAggregate[Any])
T = TypeVar("T")


class EventLog(Application[UUID]):
    """dobby's event store: every stream in one application, so one save is atomic across aggregates."""

    name = "dobby"
    is_snapshotting_enabled = True

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_state_transcodings(transcoder)

    def construct_mapper(self) -> Mapper[UUID]:
        """Events as typed envelopes (dobby.engine.store.stored_events); snapshots through the library's mapper."""
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=EventMapper)


@dataclass
class UnitOfWork:
    """Loads and saves streams of one event log; `transact` reruns a command until it saves without a conflict."""

    log: EventLog
    committer: GroupCommitter | None = None
    save_timeout: float = 2.5
    max_attempts: int = 30
    snapshot_interval: int = SNAPSHOT_INTERVAL

    def get(self, kind: type[A], aggregate_id: UUID | None) -> A | None:
        if aggregate_id is None:
            return None
        try:
            aggregate: Any = self.log.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def save(self, *aggregates: ChainedAggregate[Any]) -> int:
        """Record every pending event of `aggregates` atomically; the log position of the last one."""
        before = {aggregate.id: aggregate.version - len(aggregate.pending_events) for aggregate in aggregates}
        position = self._record(*aggregates)
        for aggregate in aggregates:
            if isinstance(aggregate, (Ledger, Target)):
                mark = crossed_interval(before[aggregate.id], aggregate.version, self.snapshot_interval)
                if mark is not None:
                    self._snapshot(aggregate.id, mark)
        return position

    def _snapshot(self, aggregate_id: UUID, version: int) -> None:
        """A snapshot is an optimisation: failing to take one never fails the command that triggered it."""
        with contextlib.suppress(PersistenceError):
            self.log.take_snapshot(aggregate_id, version=version)

    def _record(self, *aggregates: ChainedAggregate[Any]) -> int:
        if self.committer is not None:
            events = [event for aggregate in aggregates for event in aggregate.collect_events()]
            try:
                return self.committer.save(events, timeout=self.save_timeout)
            except CommitTimeoutError as error:
                raise ServiceUnavailableError(str(error), "persistence_unavailable") from error
            except BackpressureError as error:
                raise ServiceUnavailableError(str(error), "backpressure") from error
        recordings = self.log.save(*aggregates)
        return max(recording.notification.id for recording in recordings)

    def transact(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it saves without a version conflict; persistence failures become 503s."""
        for number in range(self.max_attempts):
            try:
                return attempt()
            except (IntegrityError, StaleReadError):
                time.sleep(random.uniform(0, 0.002 * min(number + 1, 10)))
            except PersistenceError as error:
                raise ServiceUnavailableError(f"persistence unavailable: {error}", "persistence_unavailable") from error
        raise ConcurrentModificationError(f"gave up after {self.max_attempts} conflicting attempts")

    def create_tables(self) -> None:
        """The event store's tables, created when missing (the PostgreSQL store does not create them itself, so
        that a process can start while the database is down)."""
        for recorder in (self.log.recorder, self.log.snapshots.recorder if self.log.snapshots else None):
            create_table = getattr(recorder, "create_table", None)
            if create_table is not None:
                create_table()

    def position(self) -> int:
        """The log's head: the position of the last recorded event (0 for an empty log)."""
        return self.log.recorder.max_notification_id() or 0

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        return [event for event in self.log.events.get(stream_id) if isinstance(event, ChainedEvent)]

    def verify_stream(self, stream_id: UUID) -> bool:
        return chain_is_valid(self.stream(stream_id))

    def close(self) -> None:
        if self.committer is not None:
            self.committer.close()
        self.log.close()


def parse_uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None
