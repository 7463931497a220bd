"""Which store failures mean "the store refuses writes" (a full disk, a read-only store, a database in recovery),
as against a store that cannot be reached or is merely busy (SPEC §2, §16)."""

from __future__ import annotations

import sqlite3

import psycopg
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

# SQLite's primary result codes for a disk that is full or failing, a read-only file, or a file it cannot open.
SQLITE_REFUSALS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")
# PostgreSQL SQLSTATEs: read_only_sql_transaction, insufficient resources (disk_full among them), system errors
# (io_error among them), and a server that is starting up, shutting down or in recovery.
POSTGRES_REFUSALS = ("25006", "53", "58", "57P03")


def refuses_writes(error: BaseException) -> bool:
    """Whether `error`, or one it was raised from, says the store accepts no writes now."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlite3.Error):
            name = getattr(current, "sqlite_errorname", "") or ""
            if name.startswith(SQLITE_REFUSALS) or _sqlite_says_so(str(current)):
                return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(POSTGRES_REFUSALS):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


def _sqlite_says_so(text: str) -> bool:
    """The messages of the codes above, for errors that lost their code on the way."""
    lowered = text.lower()
    return any(part in lowered for part in ("disk is full", "disk i/o error", "readonly database", "read-only"))


def is_store_failure(error: BaseException) -> bool:
    """Whether `error` is the store failing (down, hanging, full, read-only), an operating condition that is
    logged in one line, as against a fault in dobby itself, whose traceback is worth logging."""
    return isinstance(error, (PersistenceError, SQLAlchemyError, sqlite3.Error, psycopg.Error)) or refuses_writes(error)
