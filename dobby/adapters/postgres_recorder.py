"""The PostgreSQL application recorder with bounded retries.

The library retries every recorder call ten times on connection errors (up to ~20 s with its pool timeout);
dobby must answer 503 within 3 s when the database is gone, so each call here is tried twice. Everything else,
table lock included, is the library's own code.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry

ATTEMPTS = 2
WAIT = 0.1


def _bounded(name: str) -> Any:
    undecorated = getattr(PostgresApplicationRecorder, name).__wrapped__
    return retry((InterfaceError, OperationalError), max_attempts=ATTEMPTS, wait=WAIT)(undecorated)


class BoundedPostgresApplicationRecorder(PostgresApplicationRecorder):
    insert_events = _bounded("insert_events")
    select_events = _bounded("select_events")
    select_notifications = _bounded("select_notifications")
    max_notification_id = _bounded("max_notification_id")
