"""The projection tables and their tracking positions, in one SQLAlchemy engine."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, Engine, MetaData, Table, delete, insert, select, text, update

from dobby.projections.database import writer
from dobby.projections.digest import checkpoints_table
from dobby.projections.merkle_tree import MerkleProjection
from dobby.projections.tables import SHADOW_SUFFIX, tallies_table, tracking_table, versions_table, write_probe_table
from dobby.projections.targets import TargetsProjection
from dobby.projections.views import PROJECTIONS, Projection

PROBE_ROOM_BYTES = 64 * 1024  # random, so no store can compress it away
EVERY_PROJECTION: tuple[Projection, ...] = (*PROJECTIONS, TargetsProjection(), MerkleProjection())


class ProjectionStore:
    def __init__(self, engine: Engine, projections: Iterable[Projection] = EVERY_PROJECTION) -> None:
        self.engine = engine
        self.writer = writer(engine)
        self.metadata = MetaData()
        self.tracking = tracking_table(self.metadata)
        self.versions = versions_table(self.metadata)
        self.tallies = tallies_table(self.metadata)
        self.checkpoints = checkpoints_table(self.metadata)
        self.write_probe = write_probe_table(self.metadata)
        self.projections = {projection.name: projection for projection in projections}
        self.live: dict[str, dict[str, Table]] = {
            name: projection.tables(self.metadata) for name, projection in self.projections.items()
        }

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def table(self, projection: str, table: str) -> Table:
        return self.live[projection][table]

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """One process at a time creates tables: on PostgreSQL two concurrent `CREATE … IF NOT EXISTS` of one
        table or type can still collide in the catalogue (a unique violation), e.g. two workers starting."""
        if not self.is_postgres:
            yield
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(hashtext('dobby.storage'))"))
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(hashtext('dobby.storage'))"))
                connection.commit()

    def create(self, extra_tracking: Iterable[str] = ()) -> None:
        """Create every table that is missing (the tallies too) and a tracking row per projection (idempotent).
        A projection met for the first time (no tracking row: its tables are new and empty) is stored at its
        code's version; one tracked without a version row was written by a release before versions (0)."""
        with self.writer.begin() as connection:
            self.metadata.create_all(connection, checkfirst=True)
            tracked = set(connection.execute(select(self.tracking.c.name)).scalars())
            for name, projection in self.projections.items():
                if name not in tracked:
                    ensure_tracking(connection, self.tracking, name)
                    set_version(connection, self.versions, name, projection.version)
            for name in extra_tracking:
                ensure_tracking(connection, self.tracking, name)

    def probe_write(self, room: int = PROBE_ROOM_BYTES) -> None:
        """Write a row that needs `room` bytes of new space and delete it again, in one committed transaction:
        raises when the store refuses writes (a full disk, a read-only store, a database in recovery)."""
        probe_id = secrets.randbits(62)
        table = self.write_probe
        with self.writer.begin() as connection:
            connection.execute(insert(table).values(probe_id=probe_id, room=secrets.token_bytes(room)))
            connection.execute(delete(table).where(table.c.probe_id == probe_id))

    def stored_versions(self) -> dict[str, int]:
        """The version each projection's live tables hold (0: written before versions; absent: not created)."""
        with self.engine.connect() as connection:
            tracked = set(connection.execute(select(self.tracking.c.name)).scalars())
            stored = {
                name: version
                for name, version in connection.execute(select(self.versions.c.name, self.versions.c.version))
            }
        return {name: int(stored.get(name, 0)) for name in self.projections if name in tracked or name in stored}

    def rebuild_progress(self, head: int) -> dict[str, float]:
        """How far each projection's shadow rebuild has got (0–1): its shadow position over the log's head."""
        shadows = {name + SHADOW_SUFFIX: name for name in self.projections}
        positions = self.tracked(shadows)
        return {
            shadows[shadow]: min(position / head, 1.0) if head else 1.0 for shadow, (position, _) in positions.items()
        }

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(self.tracking.c.name, self.tracking.c.position)).all()
        return {name: position for name, position in rows if name in self.projections}

    def errors(self) -> dict[str, str | None]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(self.tracking.c.name, self.tracking.c.last_error)).all()
        return {name: error for name, error in rows}

    def tracked(self, names: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """(position, last recorded error) of each named runner that has a tracking row."""
        statement = select(self.tracking.c.name, self.tracking.c.position, self.tracking.c.last_error).where(
            self.tracking.c.name.in_(sorted(set(names)))
        )
        with self.engine.connect() as connection:
            return {name: (int(position), error) for name, position, error in connection.execute(statement)}

    def wait_for(self, position: int, timeout: float, names: Iterable[str] | None = None) -> bool:
        """Whether the named projections (all by default) reached `position` within `timeout` seconds."""
        wanted = set(names or self.projections)
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            positions = self.positions()
            if all(positions.get(name, 0) >= position for name in wanted):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, 0.05)


def ensure_tracking(connection: Connection, tracking: Table, name: str) -> None:
    found = connection.execute(select(tracking.c.name).where(tracking.c.name == name)).first()
    if found is None:
        connection.execute(insert(tracking).values(name=name, position=0))


def lock_position(connection: Connection, tracking: Table, name: str) -> int:
    """The tracking position, locked until the transaction ends: a row lock on PostgreSQL; on SQLite the
    writer's BEGIN IMMEDIATE already holds the database's write lock."""
    statement = select(tracking.c.position).where(tracking.c.name == name)
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    position = connection.execute(statement).scalar_one_or_none()
    if position is None:
        ensure_tracking(connection, tracking, name)
        return 0
    return int(position)


def set_version(connection: Connection, versions: Table, name: str, version: int) -> None:
    """Record that `name`'s live tables hold `version` (inside the caller's transaction, e.g. a rebuild's swap)."""
    changed = connection.execute(update(versions).where(versions.c.name == name).values(version=version))
    if changed.rowcount == 0:
        connection.execute(insert(versions).values(name=name, version=version))


def set_position(connection: Connection, tracking: Table, name: str, position: int) -> None:
    connection.execute(update(tracking).where(tracking.c.name == name).values(position=position, last_error=None))


def record_error(engine: Engine, tracking: Table, name: str, error: str) -> None:
    with writer(engine).begin() as connection:
        connection.execute(update(tracking).where(tracking.c.name == name).values(last_error=error[:2000]))


def clear_error(engine: Engine, tracking: Table, name: str) -> None:
    with writer(engine).begin() as connection:
        connection.execute(
            update(tracking).where(tracking.c.name == name, tracking.c.last_error.is_not(None)).values(last_error=None)
        )
