"""The PostgreSQL persistence of the event store: the library's own, with bounded retries and a late start.

The library retries every recorder call ten times on connection errors (up to ~20 s with its pool timeout);
dobby must answer 503 within 3 s when the database is gone, so each call here is tried twice. And the library
connects while it builds a recorder (to register its composite types), so a process could not even start while
the database is down; here the types are registered on the first connection that works instead. Everything
else, table lock included, is the library's own code.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import EnvType, retry
from psycopg.sql import SQL, Composed, Identifier, Literal

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
    def insert_events(self, *args: Any, **kwargs: Any) -> Any:
        self.datastore.register_types_now()
        return _bounded_insert(self, *args, **kwargs)

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


class DobbyPostgresFactory(PostgresFactory):
    """PERSISTENCE_MODULE for dobby on PostgreSQL: the bounded recorder on a datastore that starts late."""

    aggregate_recorder_class = LateTypesAggregateRecorder
    application_recorder_class = BoundedPostgresApplicationRecorder

    def __init__(self, env: EnvType | Any) -> None:
        super().__init__(env)
        self.datastore.__class__ = LateTypesDatastore  # same state, one method more lenient
