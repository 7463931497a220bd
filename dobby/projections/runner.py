"""Catching up and following the event log: batched, tracked, exactly once."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import Connection, Table, text

from dobby.engine.chain import ChainedEvent
from dobby.engine.unit_of_work import EventLog
from dobby.projections.store import ProjectionStore, lock_position, record_error, set_position
from dobby.projections.views import Projection, Recorded

LOG = logging.getLogger("dobby.projections")
BATCH_SIZE = 500


def read_batch(log: EventLog, after: int, limit: int, stop: int | None = None) -> list[Recorded]:
    notifications = log.recorder.select_notifications(start=after, limit=limit, stop=stop, inclusive_of_start=False)
    batch = []
    for notification in notifications:
        event = log.mapper.to_domain_event(notification)
        assert isinstance(event, ChainedEvent) and notification.id is not None
        batch.append(Recorded(notification.id, event))
    return batch


def apply_batch(
    connection: Connection,
    store: ProjectionStore,
    log: EventLog,
    projection: Projection,
    *,
    tables: dict[str, Table],
    tracking_name: str,
    limit: int = BATCH_SIZE,
) -> int:
    """One batch inside the caller's transaction: lock the position, fold, move the position. Returns events read."""
    position = lock_position(connection, store.tracking, tracking_name)
    if store.is_postgres:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
    batch = read_batch(log, position, limit)
    if not batch:
        return 0
    projection.apply(connection, tables, batch)
    set_position(connection, store.tracking, tracking_name, batch[-1].position)
    return len(batch)


def catch_up(
    store: ProjectionStore,
    log: EventLog,
    projection: Projection,
    *,
    tables: dict[str, Table] | None = None,
    tracking_name: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fold batches, one transaction each, until the log is exhausted. Returns the number of events read."""
    total = 0
    while True:
        with store.writer.begin() as connection:
            count = apply_batch(
                connection,
                store,
                log,
                projection,
                tables=tables or store.live[projection.name],
                tracking_name=tracking_name or projection.name,
                limit=batch_size,
            )
        if count == 0:
            return total
        total += count
        if progress is not None:
            progress(count)


@dataclass
class RunnerStatus:
    running: bool = False
    leader: bool = False
    restarts: int = 0
    last_error: str | None = None
    events: int = 0


@dataclass
class Follower:
    """Keeps projections caught up: one thread, woken by LISTEN/NOTIFY on PostgreSQL and by polling on SQLite.

    On PostgreSQL a session advisory lock per projection elects one active follower across processes; the
    others stand by and take over when it goes. A failing batch is retried with exponential backoff (the
    supervisor), and the error is kept in `status` and in the tracking table for readiness and metrics.
    """

    store: ProjectionStore
    log: EventLog
    listen_url: str | None = None
    poll_seconds: float = 0.05
    extra_steps: Sequence[Callable[[], int]] = ()
    status: dict[str, RunnerStatus] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for name in self.store.projections:
            self.status.setdefault(name, RunnerStatus())
        self._threads = [threading.Thread(target=self._loop, name="dobby-projections", daemon=True)]
        if self.listen_url is not None:
            self._threads.append(threading.Thread(target=self._listen, name="dobby-listen", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        backoff = 0.1
        with self._leadership() as held:
            while not self._stop.is_set():
                try:
                    worked = self.step(held())
                    backoff = 0.1
                except Exception as error:  # the supervisor: log, record, back off, go on
                    LOG.warning("projection batch failed (%s); retrying in %.1f s", error, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if not worked:
                    self._wake.wait(self.poll_seconds if self.listen_url is None else 1.0)
                    self._wake.clear()

    def step(self, leading: set[str] | None = None) -> int:
        """One round: a batch for every projection this follower leads, then the extra steps."""
        worked = 0
        for name, projection in self.store.projections.items():
            status = self.status.setdefault(name, RunnerStatus())
            status.running = True
            status.leader = leading is None or name in leading
            if not status.leader:
                continue
            try:
                with self.store.writer.begin() as connection:
                    count = apply_batch(
                        connection, self.store, self.log, projection, tables=self.store.live[name], tracking_name=name
                    )
            except Exception as error:
                status.last_error = f"{type(error).__name__}: {error}"
                status.restarts += 1
                with contextlib.suppress(Exception):
                    record_error(self.store.engine, self.store.tracking, name, status.last_error)
                raise
            status.events += count
            status.last_error = None
            worked += count
        for extra in self.extra_steps:
            worked += extra()
        return worked

    @contextlib.contextmanager
    def _leadership(self) -> Iterator[Callable[[], set[str] | None]]:
        """On PostgreSQL: hold a session advisory lock per projection on one connection; elsewhere: lead all."""
        if not self.store.is_postgres:
            yield lambda: None
            return
        held: set[str] = set()
        connection = self.store.engine.connect()
        last_try = 0.0

        def leading() -> set[str] | None:
            nonlocal last_try
            if len(held) < len(self.store.projections) and time.monotonic() - last_try > 1.0:
                last_try = time.monotonic()
                for name in self.store.projections:
                    if name not in held:
                        key = f"dobby.projection.{name}"
                        got = connection.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})
                        if got.scalar():
                            held.add(name)
                connection.commit()
            return held

        try:
            yield leading
        finally:
            with contextlib.suppress(Exception):
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.commit()
            connection.close()

    def _listen(self) -> None:
        """Wake the loop on every NOTIFY of the events table; reconnect with backoff when the connection drops."""
        assert self.listen_url is not None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.listen_url, autocommit=True, connect_timeout=3) as connection:
                    connection.execute("LISTEN dobby_events")
                    backoff = 0.5
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)


@dataclass
class Periodic:
    """Calls `action` every `interval` seconds on a thread until stopped; failures are logged and retried."""

    action: Callable[[], object]
    interval: float
    name: str = "dobby-periodic"
    last_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.action()
                self.last_error = None
            except Exception as error:
                LOG.exception("%s failed", self.name)
                self.last_error = f"{type(error).__name__}: {error}"
