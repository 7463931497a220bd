"""Our SQLite store (the library's, with a pool that gives back what a failed opening took) passes the library's
own recorder tests, and keeps writing once a store that could not be opened can be again (SPEC §16)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from dobby.adapters.sqlite_store import DobbySQLiteFactory, GivingBackConnectionPool

pytestmark = pytest.mark.backends(["sqlite"])


def factory(path: Path) -> DobbySQLiteFactory:
    return DobbySQLiteFactory({"SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "1", "CREATE_TABLE": "no"})


class TestGivingBackPoolPassesTheLibrarySuite(ApplicationRecorderTestCase[Any]):
    def setUp(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.directory.cleanup()

    def create_recorder(self) -> SQLiteApplicationRecorder:
        made = factory(Path(self.directory.name) / f"{uuid4()}.db")
        assert isinstance(made.datastore.pool, GivingBackConnectionPool)
        recorder = made.application_recorder()
        assert isinstance(recorder, SQLiteApplicationRecorder)
        recorder.create_table()
        return recorder


def test_a_store_that_could_not_be_opened_takes_writes_once_it_can(tmp_path: Path) -> None:
    """The library's pool kept the writer lock of a connection it failed to open: every later write waited out
    the pool timeout, for good. Ours gives it back, so the write after the store comes back just works."""
    missing = tmp_path / "not-yet" / "dobby.db"
    recorder = factory(missing).application_recorder()
    assert isinstance(recorder, SQLiteApplicationRecorder)
    for _ in range(3):  # more failed openings than the pool could ever lend out
        with pytest.raises((InterfaceError, OperationalError)):
            recorder.create_table()
    missing.parent.mkdir()
    recorder.create_table()
    event = StoredEvent(originator_id=uuid4(), originator_version=1, topic="t", state=b"{}")
    assert recorder.insert_events([event])
    assert [e.originator_id for e in recorder.select_events(event.originator_id)] == [event.originator_id]
