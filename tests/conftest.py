"""Fixtures: backends (in-memory, SQLite, PostgreSQL) and worlds built on them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support import World, database_url_for, make_world, postgres_url, reset_postgres

BACKENDS = ["memory", "sqlite", "postgres"]
STORAGE_BACKENDS = ["sqlite", "postgres"]


def _server_answers(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this run's own on the test server, dropped afterwards."""
    admin_url = postgres_url()
    problem = _server_answers(admin_url)
    if problem is not None:
        reason = f"no PostgreSQL server answers at {admin_url}: {problem}"
        if os.environ.get("DOBBY_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (DOBBY_REQUIRE_POSTGRES=1)")
        print(f"\nSKIPPING PostgreSQL tests: {reason}")
        pytest.skip(reason)
    name = f"dobby_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend != "postgres":
        return database_url_for(backend, tmp_path, None)
    url: str = request.getfixturevalue("postgres_database")
    reset_postgres(url)
    return url


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url) as built:
        yield built


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        backends = marker.args[0] if marker else BACKENDS
        metafunc.parametrize("database_url", backends, indirect=True)
