"""Zero-downtime rebuild (shadow tables swapped in one transaction) and verify (live tables vs a fresh fold)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, delete, select, text
from sqlalchemy.pool import StaticPool

from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.batches import BATCH_SIZE, apply_batch, catch_up, read_batch
from dobby.projections.store import ProjectionStore, ensure_tracking, lock_position, set_position, set_version
from dobby.projections.tables import SHADOW_SUFFIX, tracking_table
from dobby.projections.views import Projection


class RebuildAbandonedError(RuntimeError):
    """The rebuild stopped before its swap (`keep_going` said no): the live tables are untouched."""


@dataclass(frozen=True)
class RebuildReport:
    name: str
    events: int
    seconds: float
    position: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def rebuild(
    store: ProjectionStore,
    log: EventLog,
    name: str,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] | None = None,
    *,
    keep_going: Callable[[], bool] | None = None,
    batch_size: int = BATCH_SIZE,
) -> RebuildReport:
    """Fold the whole log into fresh shadow tables, then swap them for the live ones in one transaction, which
    also records the projection's code version as the stored one (SPEC §13).

    Writers never stop (the log is only read); readers see the old tables until the swap commits and the new
    ones after. The live follower waits on the tracking row lock for the length of the swap only. `keep_going`
    is asked after every batch and before the swap (the role's lease, §10); when it says no, RebuildAbandonedError.
    """
    now = clock or time.perf_counter

    def advanced(count: int) -> None:
        if keep_going is not None and not keep_going():
            raise RebuildAbandonedError(f"rebuild of {name} abandoned before its swap")
        if progress is not None:
            progress(count)

    projection = store.projections[name]
    shadow_name = name + SHADOW_SUFFIX
    metadata = MetaData()
    shadow = projection.tables(metadata, SHADOW_SUFFIX)
    started = now()
    with store.writer.begin() as connection:
        for table in shadow.values():
            table.drop(connection, checkfirst=True)
        metadata.create_all(connection)
        ensure_tracking(connection, store.tracking, shadow_name)
        set_position(connection, store.tracking, shadow_name, 0)
    events = catch_up(
        store, log, projection, tables=shadow, tracking_name=shadow_name, batch_size=batch_size, progress=advanced
    )
    with store.writer.begin() as connection:
        lock_position(connection, store.tracking, name)
        while count := apply_batch(connection, store, log, projection, tables=shadow, tracking_name=shadow_name):
            events += count
            advanced(count)
        advanced(0)
        position = lock_position(connection, store.tracking, shadow_name)
        for logical, live in store.live[name].items():
            connection.execute(text(f'DROP TABLE "{live.name}"'))
            connection.execute(text(f'ALTER TABLE "{shadow[logical].name}" RENAME TO "{live.name}"'))
        set_position(connection, store.tracking, name, position)
        set_version(connection, store.versions, name, projection.version)
        connection.execute(delete(store.tracking).where(store.tracking.c.name == shadow_name))
    return RebuildReport(name, events, now() - started, position)


def _rows(connection: Any, table: Table) -> dict[str, Any]:
    key = next(iter(table.primary_key.columns)).name
    rows = {}
    for row in connection.execute(select(table)).mappings():
        normalised = {k: json.loads(v) if isinstance(v, str) and k in ("view", "fold") else v for k, v in row.items()}
        identity = json.dumps([row[c.name] for c in table.primary_key.columns])
        rows[identity if len(table.primary_key.columns) > 1 else str(row[key])] = normalised
    return rows


def verify(store: ProjectionStore, log: EventLog, name: str) -> list[str]:
    """Differences between the live tables and a fresh fold of the log up to the live position ([] when equal)."""
    projection = store.projections[name]
    with store.engine.connect() as connection:
        if store.is_postgres:
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        position = lock_position(connection, store.tracking, name)
        live = {logical: _rows(connection, table) for logical, table in store.live[name].items()}
        connection.rollback()
    fresh = _fresh_fold(log, projection, position)
    differences = []
    for logical, rows in live.items():
        expected = fresh[logical]
        for key in sorted(set(rows) | set(expected)):
            if rows.get(key) != expected.get(key):
                differences.append(f"{name}.{logical}[{key}]: live {rows.get(key)!r} != fold {expected.get(key)!r}")
    return differences


def _fresh_fold(log: EventLog, projection: Projection, position: int) -> dict[str, dict[str, Any]]:
    """Fold the log up to `position` into in-memory SQLite tables with the projection's own code."""
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    metadata = MetaData()
    tracking = tracking_table(metadata)
    tables = projection.tables(metadata)
    metadata.create_all(engine)
    after = 0
    with engine.begin() as connection:
        ensure_tracking(connection, tracking, projection.name)
        while after < position:
            batch = read_batch(log, after, BATCH_SIZE, stop=position)
            if not batch:
                break
            projection.apply(connection, tables, batch)
            after = batch[-1].position
        return {logical: _rows(connection, table) for logical, table in tables.items()}
