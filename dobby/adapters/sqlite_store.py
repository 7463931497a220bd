"""The SQLite persistence of the event store: the library's own, with a connection pool that survives a disk that
fills or turns read-only (SPEC §16).

eventsourcing 9.5's pool takes the writer lock (or counts a reader) before it opens a connection, and gives it
back only when the connection is returned: when opening fails — SQLite sets WAL mode as it opens a connection, a
write that fails on a full disk, and the library lets that sqlite3 error through unwrapped — the lock is never
given back, and every later write waits out the pool timeout, for good, long after the disk has room again.
Here a failed opening gives back what it took, and its error is the library's OperationalError like any other.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from eventsourcing.persistence import OperationalError
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import EnvType


class _OpeningFailedError(Exception):
    """Carries the error of a failed opening out to `get_connection`, which gives back what it took first."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class GivingBackConnectionPool(SQLiteConnectionPool):
    """The library's SQLite pool, giving back the writer lock or reader count of a connection it failed to open."""

    def get_connection(self, timeout: float | None = None, is_writer: bool | None = None) -> SQLiteConnection:
        try:
            return super().get_connection(timeout=timeout, is_writer=is_writer)
        except _OpeningFailedError as failed:
            self._give_back(is_writer)
            raise failed.error from failed.error.__cause__

    def _get_connection(self, timeout: float = 0.0) -> SQLiteConnection:
        try:
            return super()._get_connection(timeout)
        except _OpeningFailedError:
            raise
        except Exception as error:
            raise _OpeningFailedError(error) from error

    def _create_connection(self) -> SQLiteConnection:
        try:
            return super()._create_connection()
        except sqlite3.Error as error:
            raise OperationalError(error) from error

    def _give_back(self, is_writer: bool | None) -> None:
        """What `put_connection` does for a returned connection's lock or count."""
        if is_writer is True:
            self._num_writers -= 1
            self._writer_lock.release()
        elif is_writer is False:
            with self._no_readers:
                self._num_readers -= 1
                if self._num_readers == 0 and self._mutually_exclusive_read_write:
                    self._no_readers.notify()


class DobbySQLiteFactory(SQLiteFactory):
    """The library's SQLite factory, its datastore's pool giving back what a failed opening took."""

    def __init__(self, env: Any | EnvType | None) -> None:
        super().__init__(env)
        self.datastore.pool.__class__ = GivingBackConnectionPool  # same state, safer methods
