"""Our PostgreSQL recorders pass the library's own recorder tests (the project's rule for replaced parts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from unittest import TestCase
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from dobby.adapters.postgres_recorder import (
    BoundedPostgresApplicationRecorder,
    LateTypesAggregateRecorder,
    LateTypesDatastore,
)

TABLE = "library_suite_events"


@pytest.fixture(scope="class")
def suite_database(request: pytest.FixtureRequest) -> Iterator[None]:
    url: str = request.getfixturevalue("postgres_database")
    request.cls.database_url = url
    yield


class PostgresSuite:
    database_url: ClassVar[str]
    datastores: list[LateTypesDatastore]

    def setUp(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.datastores = []

    def tearDown(self) -> None:
        for datastore in self.datastores:
            datastore.close()

    def datastore(self) -> LateTypesDatastore:
        parts = urlsplit(self.database_url)
        datastore = LateTypesDatastore(
            dbname=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=str(parts.port or 5432),
            user=parts.username or "postgres",
            password=parts.password or "",
            pool_size=4,
            max_overflow=8,
        )
        self.datastores.append(datastore)
        return datastore


@pytest.mark.usefixtures("suite_database")
class TestBoundedApplicationRecorderPassesTheLibrarySuite(PostgresSuite, ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> BoundedPostgresApplicationRecorder:
        recorder = BoundedPostgresApplicationRecorder(self.datastore(), events_table_name=TABLE)
        recorder.create_table()
        return recorder


@pytest.mark.usefixtures("suite_database")
class TestOneTripInsertsNeverInterleave(PostgresSuite, NonInterleavingNotificationIDsBaseCase):
    """Two writers racing: each one's events get consecutive notification ids (the table lock is still taken)."""

    def create_recorder(self) -> BoundedPostgresApplicationRecorder:
        recorder = BoundedPostgresApplicationRecorder(self.datastore(), events_table_name=TABLE)
        recorder.create_table()
        return recorder


@pytest.mark.usefixtures("suite_database")
class TestOneTripInsertTakesAnyText(PostgresSuite, TestCase):
    """The one-trip insert writes values as literals: quotes, backslashes and dollar signs in a topic or a text
    originator id stay inside their strings, and any bytes come back as they went in."""

    def test_hostile_text_round_trips(self) -> None:
        datastore = self.datastore()
        datastore.originator_id_type = "text"
        recorder = BoundedPostgresApplicationRecorder(datastore, events_table_name=TABLE)
        recorder.create_table()
        hostile = 'x\'); DROP TABLE library_suite_events; -- \\ $$ \u00e9 "q"'
        events = [
            StoredEvent(originator_id=hostile, originator_version=1, topic=hostile, state=bytes(range(256))),
            StoredEvent(originator_id=hostile, originator_version=2, topic="t:'", state=b"\\x00'"),
        ]
        ids = recorder.insert_events(events)
        assert ids is not None and len(ids) == 2 and ids[1] == ids[0] + 1
        stored = recorder.select_events(hostile)
        assert [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored] == [
            (e.originator_id, e.originator_version, e.topic, e.state) for e in events
        ]

    def test_a_conflict_writes_nothing_and_leaves_the_connection_usable(self) -> None:
        recorder = BoundedPostgresApplicationRecorder(self.datastore(), events_table_name=TABLE)
        recorder.create_table()
        first = StoredEvent(originator_id=uuid4(), originator_version=1, topic="t", state=b"{}")
        recorder.insert_events([first])
        other = StoredEvent(originator_id=uuid4(), originator_version=1, topic="t", state=b"{}")
        with pytest.raises(IntegrityError):
            recorder.insert_events([other, first])
        assert recorder.select_events(other.originator_id) == []
        for _ in range(6):  # more than the pool holds: every connection came back clean
            assert recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"{}")])


@pytest.mark.usefixtures("suite_database")
class TestLateTypesAggregateRecorderPassesTheLibrarySuite(PostgresSuite, AggregateRecorderTestCase):
    def create_recorder(self) -> LateTypesAggregateRecorder:
        recorder = LateTypesAggregateRecorder(self.datastore(), events_table_name=TABLE)
        recorder.create_table()
        return recorder


def test_a_recorder_is_built_without_the_database() -> None:
    """Building needs no connection: the composite types are registered on first use."""
    datastore = LateTypesDatastore(
        dbname="nowhere", host="127.0.0.1", port="9", user="postgres", password="", connect_timeout=1
    )
    try:
        recorder = BoundedPostgresApplicationRecorder(datastore, events_table_name=TABLE)
        assert recorder.datastore.psycopg_type_adapters == {}
    finally:
        datastore.close()
