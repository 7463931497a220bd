"""The SQLAlchemy engine for projection tables, in the same database as the event store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, StaticPool


def projection_url(database_url: str) -> URL:
    url = make_url(database_url)
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def connect(database_url: str, timeout_seconds: float, pool_size: int = 5) -> Engine:
    """An engine with every wait bounded: statement and lock timeouts on PostgreSQL, busy timeout on SQLite."""
    if database_url.startswith("memory://"):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        _sqlite_transactions(engine)
        return engine
    url = projection_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, poolclass=NullPool, connect_args={"timeout": timeout_seconds, "check_same_thread": False}
        )
        _sqlite_transactions(engine)
        return engine
    millis = int(timeout_seconds * 1000)
    options = f"-c statement_timeout={millis * 5} -c lock_timeout={millis} -c idle_in_transaction_session_timeout=60000"
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_seconds,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, round(timeout_seconds)), "options": options},
    )


def _sqlite_transactions(engine: Engine) -> None:
    """WAL and real transactions (pysqlite would not BEGIN before reads): deferred for readers, and
    BEGIN IMMEDIATE for writers (`writer(engine)`), which take the write lock before they read anything."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The engine to write through: on SQLite its transactions begin IMMEDIATE; elsewhere it is `engine`."""
    return engine.execution_options(immediate=True)
