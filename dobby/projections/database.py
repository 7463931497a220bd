"""The SQLAlchemy engine for projection tables, in the same database as the event store."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import sql
from sqlalchemy import JSON, Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, StaticPool

from dobby.adapters.postgres_session import session_parameters


def projection_url(database_url: str) -> URL:
    url = make_url(database_url)
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


# JSON columns (views, folds) written and read by msgspec rather than the json module: a tenth of the cost per row.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": msgspec.json.decode}


def connect(database_url: str, timeout_seconds: float, pool_size: int = 5) -> Engine:
    """An engine with every wait bounded: statement and lock timeouts on PostgreSQL, busy timeout on SQLite."""
    if database_url.startswith("memory://"):
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}, **JSON_CODEC
        )
        _sqlite_transactions(engine)
        return engine
    url = projection_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, poolclass=NullPool, connect_args={"timeout": timeout_seconds, "check_same_thread": False}, **JSON_CODEC
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
        connect_args=session_parameters(timeout_seconds, options),
        **JSON_CODEC,
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


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` inside the connection's transaction: on PostgreSQL by one COPY, each row written by psycopg's
    copy writer (a batch is one message, not a Bind and an Execute per row); elsewhere by executemany."""
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    columns = [column.name for column in table.columns]
    as_json = {column.name for column in table.columns if isinstance(column.type, JSON)}
    statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.Identifier(table.name), columns=sql.SQL(",").join(map(sql.Identifier, columns))
    )
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([_json_text(row[name]) if name in as_json else row[name] for name in columns])
