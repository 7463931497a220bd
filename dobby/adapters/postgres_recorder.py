"""The PostgreSQL persistence of the event store: the library's own, with bounded retries, a late start and a
write in one round trip.

The library retries every recorder call ten times on connection errors (up to ~20 s with its pool timeout);
dobby must answer 503 within 3 s when the database is gone, so each call here is tried twice. And the library
connects while it builds a recorder (to register its composite types), so a process could not even start while
the database is down; here the types are registered on the first connection that works instead.

The library's write takes about fourteen waits on the socket per call (pipeline syncs, a commit) and dumps each
event through its composite type in Python (a regex per field); under load each wait is a hand-off of the GIL.
Here one write is one simple-protocol message: BEGIN, the library's own table lock and NOTIFY, one INSERT of plain
arrays, COMMIT — the same statements in the same order, so the log stays gap-free in commit order. Reads are the
library's own code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import EnvType, retry
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from dobby.adapters.postgres_session import session_parameters

ATTEMPTS = 2
WAIT = 0.1


def _bounded(name: str) -> Any:
    undecorated = getattr(PostgresApplicationRecorder, name).__wrapped__
    return retry((InterfaceError, OperationalError), max_attempts=ATTEMPTS, wait=WAIT)(undecorated)


_bounded_insert = _bounded("insert_events")


class LateTypesDatastore(PostgresDatastore):
    """Registers the composite types when a recorder first needs them, not when it is built."""

    def register_type_adapters(self) -> None:
        """What the library calls while building a recorder: nothing, so building never waits for the database."""

    def register_types_now(self) -> None:
        """Registers what is not registered yet (nothing to do, and no I/O, once all are)."""
        PostgresDatastore.register_type_adapters(self)


class LateTypes(PostgresAggregateRecorder):
    """A recorder on a datastore that registers its types late: after creating its table, and before a write."""

    datastore: LateTypesDatastore

    def create_table(self) -> None:
        super().create_table()
        self.datastore.register_types_now()


class LateTypesAggregateRecorder(LateTypes):
    """The snapshots' recorder."""

    def insert_events(self, *args: Any, **kwargs: Any) -> Any:
        self.datastore.register_types_now()
        return super().insert_events(*args, **kwargs)


class BoundedPostgresApplicationRecorder(LateTypes, PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=ATTEMPTS, wait=WAIT)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            query = self._one_trip(stored_events).as_bytes(connection)
            try:
                cursor.execute(query)
            except Exception:
                connection.rollback()  # the failed statement left the explicit transaction open
                raise
            while cursor.statusmessage is None or not cursor.statusmessage.startswith("INSERT"):
                if not cursor.nextset():
                    raise ProgrammingError("the insert answered no notification ids")
            ids = [row["notification_id"] for row in cursor.fetchall()]
        if len(ids) != len(stored_events):
            raise ProgrammingError(f"got {len(ids)} notification ids for {len(stored_events)} events")
        return ids

    def _one_trip(self, stored_events: Sequence[StoredEvent]) -> Composable:
        """The whole write as one message of statements; every value is a literal (UUIDs, integers, hex bytea,
        and topics quoted by psycopg), so nothing a payload holds can leave its string."""
        ids = ",".join(_id_literal(event.originator_id) for event in stored_events)
        versions = ",".join(str(int(event.originator_version)) for event in stored_events)
        topics = ",".join(_text_literal(event.topic) for event in stored_events)
        states = ",".join("'\\x" + event.state.hex() + "'" for event in stored_events)
        id_type = "uuid" if self.datastore.originator_id_type == "uuid" else "text"
        table = SQL("{0}.{1}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        statements: list[Any] = [  # the library types its lock statements loosely; they are SQL
            SQL("BEGIN"),
            *self.lock_table_statements,
            SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
            SQL(
                "INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ARRAY[{ids}]::{id_type}[], ARRAY[{versions}]::bigint[], "
                "ARRAY[{topics}]::text[], ARRAY[{states}]::bytea[]) RETURNING notification_id"
            ).format(
                table=table,
                ids=SQL(ids),
                id_type=SQL(id_type),
                versions=SQL(versions),
                topics=SQL(topics),
                states=SQL(states),
            ),
            SQL("COMMIT"),
        ]
        joined: Composable = SQL("; ").join(statements)
        return joined

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock_table_statements.append(self._restart_sequence_statement())

    def _restart_sequence_statement(self) -> Composed:
        """Under the table lock, the next position is the one after the last stored event: a save that failed (a
        version conflict) used numbers of the sequence, and a hole in the positions would read as a deleted event
        (SPEC §11: log position P is leaf P−1 of the digest). Rides with the lock statements, so every insert
        path that takes the lock runs it."""
        table = Identifier(self.datastore.schema, self.events_table_name)
        name = f'"{self.datastore.schema}"."{self.events_table_name}"'
        statement: Composed = SQL(
            "SELECT setval(pg_get_serial_sequence({name}, 'notification_id'), "
            "COALESCE(MAX(notification_id), 0) + 1, false) FROM {table}"
        ).format(name=Literal(name), table=table)
        return statement

    select_events = _bounded("select_events")
    select_notifications = _bounded("select_notifications")
    max_notification_id = _bounded("max_notification_id")


def _id_literal(originator_id: UUID | str) -> str:
    return f"'{originator_id}'" if isinstance(originator_id, UUID) else _text_literal(originator_id)


@lru_cache(maxsize=4096)
def _text_literal(text: str) -> str:
    """A string as an SQL literal, quoted by psycopg (topics repeat, so each is quoted once)."""
    return Literal(text).as_bytes(None).decode("utf-8")


class DobbyPostgresFactory(PostgresFactory):
    """PERSISTENCE_MODULE for dobby on PostgreSQL: the bounded recorder on a datastore that starts late."""

    aggregate_recorder_class = LateTypesAggregateRecorder
    application_recorder_class = BoundedPostgresApplicationRecorder

    def __init__(self, env: EnvType | Any) -> None:
        super().__init__(env)
        self.datastore.__class__ = LateTypesDatastore  # same state, one method more lenient
        pool_kwargs = self.datastore.pool.kwargs
        assert isinstance(pool_kwargs, dict)  # the library hands the pool a plain dict; the pool opens lazily
        pool_kwargs.update(session_parameters(self.datastore.pool.timeout))
