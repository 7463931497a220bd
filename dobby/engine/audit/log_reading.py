"""Reading the event log as it is stored: every event at its position, read defensively for verification, and
the log positions of one stream's events (SPEC §4.8 history, §11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from dobby.engine.audit.verification import Entry
from dobby.engine.model.chain import ChainedEvent

READ_BATCH = 1000


def stream_key(originator_id: Any) -> str:
    """A stream id in one spelling (a UUID's canonical form), however the recorder returned it."""
    try:
        return str(originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


def read_entries(log: Application[UUID], after: int = 0, stop: int | None = None) -> Iterator[Entry]:
    """Every stored event after position `after` (up to `stop`), in log order. A row that no longer decodes into a
    chained event (altered in the database) is an Entry with its problem, not an exception."""
    while True:
        notifications = log.recorder.select_notifications(
            start=after, limit=READ_BATCH, stop=stop, inclusive_of_start=False
        )
        for notification in notifications:
            assert notification.id is not None
            key = stream_key(notification.originator_id)
            try:
                event = log.mapper.to_domain_event(notification)
            except Exception as error:  # anything a tampered row can make the decoder raise
                yield Entry(notification.id, key, notification.originator_version, None, _describe(error))
                continue
            if not isinstance(event, ChainedEvent):
                yield Entry(notification.id, key, notification.originator_version, None, "not a chained event")
                continue
            yield Entry(notification.id, key, notification.originator_version, event)
        if len(notifications) < READ_BATCH:
            return
        after = notifications[-1].id or after


def _describe(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def stream_positions(log: Application[UUID], stream_id: UUID) -> dict[int, int]:
    """Version → log position of each stored event of one stream, asked of the recorder's own table."""
    recorder: Any = log.recorder
    stored = getattr(recorder, "_stored_events", None)
    if stored is not None:  # the in-memory recorder: a notification's position is its index + 1
        return {s.originator_version: index + 1 for index, s in enumerate(stored) if s.originator_id == stream_id}
    datastore = recorder.datastore
    table = recorder.events_table_name
    if hasattr(datastore, "schema"):  # PostgreSQL
        statement = (
            f'SELECT originator_version, notification_id FROM "{datastore.schema}"."{table}" WHERE originator_id = %s'
        )
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (stream_id if datastore.originator_id_type == "uuid" else str(stream_id),))
            return {row["originator_version"]: row["notification_id"] for row in cursor.fetchall()}
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?", (stream_id.hex,))
        return {row[0]: row[1] for row in cursor.fetchall()}
