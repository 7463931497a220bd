"""Our PostgreSQL recorders pass the library's own recorder tests (the project's rule for replaced parts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import psycopg
import pytest
from eventsourcing.tests.persistence import AggregateRecorderTestCase, ApplicationRecorderTestCase

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
