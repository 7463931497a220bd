"""A running dobby process: the engine, the projections and the processors around them, and how it comes up
without its database, runs its background roles, and stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dobby.adapters.fabric import RefreshingGovernanceTruth
from dobby.adapters.settings import Settings
from dobby.engine.kernel.errors import describe
from dobby.engine.service import Engine
from dobby.projections.digest import CHECKPOINT_SECONDS, LogDigest
from dobby.projections.queries import Queries
from dobby.projections.receipts import Receipts
from dobby.projections.store import ProjectionStore
from dobby.runtime.follower import Follower
from dobby.runtime.gauges import gauge_values
from dobby.runtime.leadership import CHECKPOINTS, EXPIRY, Leadership
from dobby.runtime.periodic import Periodic
from dobby.runtime.processors import BOBBIN, ExpiryProcessor, ProvenancePublisher
from dobby.runtime.tallies import DurableTallies

LOG = logging.getLogger("dobby")


@dataclass
class System:
    """Everything a dobby process runs: the engine, the projections and the processors around them."""

    settings: Settings
    engine: Engine
    store: ProjectionStore
    queries: Queries
    follower: Follower
    expiry: ExpiryProcessor
    publisher: ProvenancePublisher | None
    tallies: DurableTallies
    digest: LogDigest
    leadership: Leadership
    receipts: Receipts
    background: list[Periodic] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _waiter: threading.Thread | None = None

    @property
    def tokens_file(self) -> Path | None:
        return self.settings.api_tokens_file

    @property
    def db_timeout_seconds(self) -> float:
        return self.settings.db_timeout_seconds

    @property
    def body_timeout_seconds(self) -> float:
        return self.settings.body_timeout_seconds

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    @property
    def console_secret(self) -> str | None:
        return self.settings.console_secret

    def start(
        self, *, background: bool, when_ready: Callable[[], object] | None = None, first_wait: float = 1.0
    ) -> None:
        """Start without waiting for the database (SPEC §2): Fabric refreshes at once; storage is set up, and the
        tallies and (with `background`) the read side and processors start, on a thread that retries every
        second until the database answers. Until then the persistence probe fails and the mode is warmup;
        `when_ready` is called once storage is ready (the app probes again then, so warmup ends at once). A
        database that answers is waited for up to `first_wait`, so a normal start serves ready from its first
        request."""
        self.start_fabric_refresh()
        self._waiter = threading.Thread(
            target=self._come_up, args=(background, when_ready), name="dobby-storage", daemon=True
        )
        self._waiter.start()
        self._ready.wait(first_wait)

    def _come_up(self, background: bool, when_ready: Callable[[], object] | None) -> None:
        waited = False
        while not self._stopping.is_set():
            try:
                self.init_storage()
            except Exception as error:  # the database is not there yet: say so once, then keep trying
                if not waited:
                    LOG.warning("waiting for the database: %s", describe(error))
                    waited = True
                self._stopping.wait(1.0)
                continue
            if waited:
                LOG.warning("the database answers: storage ready")
            self.tallies.start()
            if background:
                self.start_background()
            if when_ready is not None:
                when_ready()
            self._ready.set()
            return

    def projection_positions(self) -> dict[str, int]:
        return self.store.positions()

    def projection_health(self) -> dict[str, dict[str, Any]]:
        health = self.follower.health(self.engine.position())
        return {name: runner.as_json() for name, runner in sorted(health.items())}

    def queue_depth(self) -> int:
        return self.queries.revalidation_queue_depth()

    def committer_pending(self) -> int:
        committer = self.engine.context.uow.committer
        return 0 if committer is None else committer.pending

    def fabric_checked_at(self) -> Any:
        return getattr(self.engine.context.governance, "checked_at", None)

    def counters(self) -> list[tuple[str, str, int]]:
        """Counts of writes (the counters projection) and of answers that stored nothing (the durable tallies)."""
        return self.queries.counters_by_metric() + self.tallies.totals()

    def init_storage(self) -> None:
        """The event store's and the projections' tables, created when missing (idempotent)."""
        with self.store.creating():
            self.engine.context.uow.create_tables()
            self.store.create(extra_tracking=[BOBBIN] if self.publisher else [])

    def start_fabric_refresh(self) -> None:
        """Refresh Fabric on a thread of its own, so no request ever waits for it (the API needs this too)."""
        governance = self.engine.context.governance
        if isinstance(governance, RefreshingGovernanceTruth) and not any(
            p.name == "dobby-fabric" for p in self.background
        ):
            governance.refresh()
            governance.refresh_in_background()
            refresher = Periodic(governance.refresh, self.settings.fabric_refresh_seconds, "dobby-fabric")
            refresher.start()
            self.background.append(refresher)

    def start_background(self) -> None:
        """The read side and the processors: projections, Bobbin publisher, expiry processor (and the tallies)."""
        self.start_fabric_refresh()
        self.tallies.start()
        self.follower.start()  # and the leadership of every role
        expiry = Periodic(self.led(EXPIRY, self.expiry.tick), self.settings.processor_interval_seconds, "dobby-expiry")
        expiry.start()
        self.background.append(expiry)
        signer = Periodic(self.led(CHECKPOINTS, self.digest.tick), CHECKPOINT_SECONDS, "dobby-checkpoints")
        signer.start()
        self.background.append(signer)

    def led(self, role: str, action: Callable[[], object]) -> Callable[[], object]:
        """`action`, run only while this process leads `role` (SPEC §10: one instance across processes)."""

        def run() -> object:
            return action() if self.leadership.leads(role) else None

        return run

    def probe_persistence(self) -> None:
        """Touch the event store and the projections' tracking table; raises when either cannot answer (or is
        not created yet: storage counts as reachable only once it is ready)."""
        self.engine.position()
        self.store.positions()

    def probe_write(self) -> None:
        self.store.probe_write()

    def gauges(self) -> dict[str, Any]:
        """The gauge values of SPEC §6, read from the projections at scrape time."""
        return gauge_values(self.engine, self.follower, self.queries, self.leadership)

    def close(self) -> None:
        self._stopping.set()
        if self._waiter is not None:
            self._waiter.join(10)
        for periodic in self.background:
            periodic.stop()
        self.follower.stop()
        self.tallies.stop()
        self.store.engine.dispose()
        self.engine.close()
