"""Following the event log: one thread keeps every projection and extra step caught up, batched, tracked, exactly
once (the batches themselves are dobby.projections.batches)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dobby.adapters.postgres_session import session_parameters
from dobby.adapters.store_errors import is_store_failure
from dobby.engine.kernel.errors import describe
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.batches import BATCH_SIZE, Reader, SharedRead, apply_batch
from dobby.projections.store import ProjectionStore, clear_error, record_error
from dobby.projections.upgrade import Upgrader, VersionState, version_states
from dobby.runtime.leadership import Leadership

LOG = logging.getLogger("dobby.projections")
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 30.0


@dataclass
class RunnerStatus:
    """One runner (a projection or an extra step such as the Bobbin publisher) as this process sees it."""

    running: bool = False
    leader: bool = False
    restarts: int = 0
    last_error: str | None = None
    events: int = 0
    failures: int = 0
    retry_at: float = 0.0
    error_recorded: bool = True  # the tracking row may hold an error left by another process: clear it on success
    skipped: str | None = None  # why this process does not run it (its code is older than the stored version)


@dataclass(frozen=True)
class RunnerHealth:
    position: int
    lag: int
    failing: str | None
    restarts: int
    version: VersionState | None = None
    rebuild_progress: float | None = None
    """0–1 while a rebuild to the code's version is due or running (SPEC §13), else None."""

    @property
    def rebuilding(self) -> str | None:
        """What /ready names while the projection waits for its rebuild (None when none is due)."""
        if self.version is None or not self.version.stale:
            return None
        share = self.rebuild_progress or 0.0
        return f"rebuilding from version {self.version.stored} to {self.version.code} ({share:.0%})"

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"position": self.position, "lag": self.lag, "failing": self.failing}
        if self.version is not None:
            body["version"] = self.version.code
            body["stored_version"] = self.version.stored
            body["rebuilding"] = None if self.rebuild_progress is None else round(self.rebuild_progress, 4)
        return body


@dataclass
class Follower:
    """Keeps projections caught up: one thread, woken by LISTEN/NOTIFY on PostgreSQL and by polling on SQLite.

    Every projection and every extra step (the Bobbin publisher) is a runner of its own, and a role of
    `leadership`: on PostgreSQL one follower across processes runs it (a session advisory lock, see
    `leadership`); the others stand by and take over when it goes. A runner that fails is retried alone with
    exponential backoff while the others go on every round; its error is kept in `status` and in the tracking
    table for readiness and metrics until it succeeds again. Each round reads the log once for all runners
    (SharedRead); while events only trickle in, it waits `gather_seconds` between rounds so that a round folds a
    batch rather than one event.
    """

    store: ProjectionStore
    log: EventLog
    listen_url: str | None = None
    poll_seconds: float = 0.05
    gather_seconds: float = 0.1
    extra_steps: Mapping[str, Callable[[Reader | None], int]] = field(default_factory=dict)
    leadership: Leadership | None = None
    rebuild_batch_size: int = BATCH_SIZE
    status: dict[str, RunnerStatus] = field(default_factory=dict)
    upgrader: Upgrader = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.upgrader = Upgrader(self.store, self.log, self._leads, batch_size=self.rebuild_batch_size)

    def _leads(self, name: str) -> bool:
        return self.leadership is None or self.leadership.leads(name)

    @property
    def names(self) -> list[str]:
        """Every runner: the projections, then the extra steps."""
        return [*self.store.projections, *self.extra_steps]

    def start(self) -> None:
        for name in self.names:
            self.status.setdefault(name, RunnerStatus())
        if self.leadership is not None:
            self.leadership.start()
        self._threads = [threading.Thread(target=self._loop, name="dobby-projections", daemon=True)]
        if self.listen_url is not None:
            self._threads.append(threading.Thread(target=self._listen, name="dobby-listen", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self.upgrader.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        if self.leadership is not None:
            self.leadership.stop()

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            worked = self.step(self.leadership.leading() if self.leadership is not None else None)
            if not worked:
                self._wake.wait(self._idle_seconds())
                self._wake.clear()
            elif worked < BATCH_SIZE:  # a trickle: let a few more events gather, a round costs the same
                self._stop.wait(self.gather_seconds)

    def _idle_seconds(self) -> float:
        """The pause when no runner had work: until woken, the next poll, or the next retry of a failing runner."""
        pause = self.poll_seconds if self.listen_url is None else 1.0
        retries = [s.retry_at for s in self.status.values() if s.leader and s.last_error is not None]
        if retries:
            pause = min(pause, max(min(retries) - time.monotonic(), 0.0))
        return pause

    def step(self, leading: set[str] | None = None) -> int:
        """One round: each runner this follower leads and whose backoff is over runs once; a runner's failure is
        its own (recorded, backed off) and never stops the others. Returns the events read."""
        worked = 0
        due = []
        newer = self._versions(leading)
        for name in self.names:
            status = self.status.setdefault(name, RunnerStatus())
            status.running = True
            status.leader = (leading is None or name in leading) and name not in newer
            if status.leader and time.monotonic() >= status.retry_at:
                due.append(name)
        read = self._shared_read(due)
        for name in due:
            status = self.status[name]
            try:
                count = self._run(name, read)
                if status.error_recorded:
                    clear_error(self.store.engine, self.store.tracking, name)
            except Exception as error:
                self._failed(name, status, error)
                continue
            status.error_recorded = False
            status.last_error = None
            status.failures = 0
            status.retry_at = 0.0
            status.events += count
            worked += count
        return worked

    def _versions(self, leading: set[str] | None) -> set[str]:
        """Start the rebuilds that are due here (SPEC §13); the projections whose stored version is newer than
        this code, which this process leaves alone (and whose roles it gives up)."""
        try:
            states = self.upgrader.refresh()
        except Exception:  # the database does not answer: the runners meet that too, and record it
            states = self.upgrader.states
        newer = {name for name, state in states.items() if state.newer}
        for name in newer:
            status = self.status.setdefault(name, RunnerStatus())
            status.skipped = f"stored version {states[name].stored} is newer than this code's {states[name].code}"
            if self.leadership is not None:
                self.leadership.give_up(name)
        self.upgrader.start_due(leading)
        return newer

    def health(self, head: int) -> dict[str, RunnerHealth]:
        """Every runner's position, lag and error. Positions and errors come from the tracking table, so every
        process (an API with no follower running too) shows what the leading runner did, wherever it runs; this
        process's own error counts as well, for when the database could not record it."""
        tracked = self.store.tracked(self.names)
        versions = version_states(self.store)
        progress = self.store.rebuild_progress(head)
        health = {}
        for name in self.names:
            position, recorded = tracked.get(name, (0, None))
            status = self.status.get(name)
            local = status.last_error if status is not None else None
            local = local or self.upgrader.errors.get(name)
            restarts = status.restarts if status is not None else 0
            version = versions.get(name)
            share = progress.get(name, 0.0) if version is not None and version.stale else None
            health[name] = RunnerHealth(position, max(head - position, 0), local or recorded, restarts, version, share)
        return health

    def _shared_read(self, names: list[str]) -> Reader | None:
        """One read from the lowest tracked position of the due runners; None (each reads alone) if that fails."""
        if len(names) < 2:
            return None
        read = SharedRead(self.log)
        try:
            tracked = self.store.tracked(names)
            read.prime(min(tracked.get(name, (0, None))[0] for name in names))
        except Exception:  # the runners meet the same failure each on its own, and record it
            return None
        return read

    def _run(self, name: str, read: Reader | None = None) -> int:
        extra = self.extra_steps.get(name)
        if extra is not None:
            return extra(read)
        with self.store.writer.begin() as connection:
            return apply_batch(
                connection,
                self.store,
                self.log,
                self.store.projections[name],
                tables=self.store.live[name],
                tracking_name=name,
                read=read,
            )

    def _failed(self, name: str, status: RunnerStatus, error: Exception) -> None:
        state = self.upgrader.states.get(name)
        if state is not None and state.stale and self.upgrader.rebuilding(name):
            # The live tables may have the old shape (a column the new code writes): the rebuild's swap brings
            # the rows this batch would have written, so this is waiting, not failing (SPEC §13).
            status.retry_at = time.monotonic() + 1.0
            LOG.info("%s: live batch refused while its rebuild runs (%s); the swap brings it", name, describe(error))
            return
        status.last_error = describe(error)
        status.restarts += 1
        status.failures += 1
        backoff = min(FIRST_BACKOFF * 2 ** (status.failures - 1), MAX_BACKOFF)
        status.retry_at = time.monotonic() + backoff
        LOG.warning(
            "%s failed (%s); retrying it in %.1f s",
            name,
            status.last_error,
            backoff,
            exc_info=status.failures == 1 and not is_store_failure(error),
        )
        status.error_recorded = True
        with contextlib.suppress(Exception):  # the database is down: the error is still in `status`
            record_error(self.store.engine, self.store.tracking, name, status.last_error)

    def _listen(self) -> None:
        """Wake the loop on every NOTIFY of the events table; reconnect with backoff when the connection drops."""
        assert self.listen_url is not None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.listen_url, autocommit=True, **session_parameters(3)) as connection:
                    connection.execute("LISTEN dobby_events")
                    backoff = 0.5
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
