"""Changes made directly in the event store's table, as someone with database access could make them: through
SQL on the stored rows (each row re-encoded with the log's own mapper, so the change is to what the event says,
whatever the stored encoding)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine, text

from dobby.engine.kernel.canonical import GENESIS_HASH
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.store.unit_of_work import EventLog


class Table:
    """The event store's table in one database, on SQLite or PostgreSQL."""

    def __init__(self, log: EventLog, engine: Engine) -> None:
        self.log, self.engine = log, engine
        recorder: Any = log.recorder
        self.postgres = hasattr(recorder.datastore, "schema")
        self.name = (
            f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            if self.postgres
            else recorder.events_table_name
        )
        self.position = "notification_id" if self.postgres else "rowid"

    def event(self, position: int) -> ChainedEvent:
        (notification,) = self.log.recorder.select_notifications(start=position, limit=1, stop=position)
        event = self.log.mapper.to_domain_event(notification)
        assert isinstance(event, ChainedEvent)
        return event

    def write(self, position: int, event: ChainedEvent) -> None:
        stored: StoredEvent = self.log.mapper.to_stored_event(event)
        with self.engine.begin() as connection:
            connection.execute(
                text(f"UPDATE {self.name} SET state = :state WHERE {self.position} = :position"),
                {"state": stored.state, "position": position},
            )

    def change(self, position: int, alter: Callable[[ChainedEvent], ChainedEvent]) -> None:
        self.write(position, alter(self.event(position)))

    def delete(self, position: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM {self.name} WHERE {self.position} = :p"), {"p": position})

    def swap(self, first: int, second: int) -> None:
        """Two events trade log positions."""
        statement = text(f"UPDATE {self.name} SET {self.position} = :to WHERE {self.position} = :at")
        with self.engine.begin() as connection:
            connection.execute(statement, {"to": -1, "at": first})
            connection.execute(statement, {"to": first, "at": second})
            connection.execute(statement, {"to": second, "at": -1})

    def positions_of(self, stream_id: str) -> list[int]:
        positions = []
        for notification in self.log.recorder.select_notifications(start=1, limit=100_000):
            if str(notification.originator_id).replace("-", "") == stream_id.replace("-", ""):
                assert notification.id is not None
                positions.append(notification.id)
        return positions

    def rewrite_chain(self, stream_id: str, alter: Callable[[ChainedEvent], ChainedEvent]) -> None:
        """Alter a stream's first event and rewrite the whole chain with freshly computed hashes."""
        prev_hash = GENESIS_HASH
        for number, position in enumerate(self.positions_of(stream_id)):
            event = self.event(position)
            if number == 0:
                event = alter(event)
            event = _replaced(event, prev_hash=prev_hash)
            event = _replaced(event, event_hash=event.expected_hash())
            self.write(position, event)
            prev_hash = event.event_hash


def other_actor(event: ChainedEvent) -> ChainedEvent:
    return _replaced(event, actor=event.actor + "-not")


def other_time(event: ChainedEvent, microseconds: int = 1) -> ChainedEvent:
    return _replaced(event, timestamp=event.timestamp + timedelta(microseconds=microseconds))


def other_payload(event: ChainedEvent, choice: int = 0) -> ChainedEvent:
    """One value somewhere in the payload changed (the `choice`-th of its leaves, cyclically)."""
    payload = copy.deepcopy(event.payload)
    leaves = list(_leaves(payload))
    if not leaves:
        payload["added"] = True
    else:
        holder, key = leaves[choice % len(leaves)]
        holder[key] = _changed(holder[key])
    return _replaced(event, payload=payload)


def _leaves(value: Any) -> Any:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, (dict, list)) and item:
            yield from _leaves(item)
        else:
            yield value, key


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return ("y" if value[:1] == "x" else "x") + value[1:]
    return "x"


def _replaced(event: ChainedEvent, **changes: Any) -> ChainedEvent:
    changed: ChainedEvent = dataclasses.replace(cast(Any, event), **changes)
    return changed
