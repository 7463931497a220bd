"""The composition root: reads settings once and builds and wires everything else."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from eventsourcing.persistence import PersistenceError

from dobby.adapters.bobbin import BobbinProvenanceSink
from dobby.adapters.dsse import seal
from dobby.adapters.fabric import RefreshingGovernanceTruth, builtin_document, file_fetcher
from dobby.adapters.memory import StaticGovernanceTruth
from dobby.adapters.settings import Settings, eventsourcing_env, load_settings
from dobby.adapters.signing import load_signer
from dobby.adapters.upstreams import FabricHttpGovernance, ShuttleEvidence, WarpApprovals
from dobby.adapters.warp import FileApprovals
from dobby.engine.commands.context import Context, Limits, NoObserver
from dobby.engine.kernel.clock import Clock, rfc3339, system_clock
from dobby.engine.kernel.errors import describe
from dobby.engine.kernel.ports import ApprovalSource, EvidenceSource, GovernanceTruth, Observer, ProvenanceSink
from dobby.engine.rules.modes import Manifest
from dobby.engine.service import Engine
from dobby.engine.store.group_commit import GroupCommitter
from dobby.engine.store.unit_of_work import EventLog, UnitOfWork
from dobby.projections.database import connect
from dobby.projections.digest import CHECKPOINT_SECONDS, MERKLE, LogDigest
from dobby.projections.queries import Queries
from dobby.projections.receipts import Receipts
from dobby.projections.store import EVERY_PROJECTION, ProjectionStore
from dobby.projections.views import Projection
from dobby.resources import read_manifest
from dobby.runtime.follower import Follower
from dobby.runtime.leadership import CHECKPOINTS, EXPIRY, Leadership
from dobby.runtime.periodic import Periodic
from dobby.runtime.processors import BOBBIN, ExpiryProcessor, ProvenancePublisher
from dobby.runtime.tallies import DurableTallies

LOG = logging.getLogger("dobby")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        neutral_sample_rate=settings.neutral_sample_rate,
        replay_budget=settings.replay_budget,
        replay_budget_window_seconds=settings.replay_budget_window_seconds,
        velocity_max=settings.promotion_velocity_max,
        velocity_window_seconds=settings.promotion_velocity_window_seconds,
        proposal_ttl_seconds=settings.proposal_ttl_seconds,
        approval_quorum_high=settings.approval_quorum_high,
        approval_quorum_critical=settings.approval_quorum_critical,
        clock_skew_seconds=settings.clock_skew_seconds,
        confidence=settings.confidence,
        require_judged_change=settings.require_judged_change,
    )


def open_event_log(settings: Settings) -> EventLog:
    """The event store. The SQLite store creates its tables as it opens; when it cannot (a full disk, a read-only
    file: SPEC §16) it is opened without, so the process starts in warmup and `init_storage` creates them as soon
    as the store takes writes again."""
    env = eventsourcing_env(settings)
    try:
        return EventLog(env=env)
    except (PersistenceError, sqlite3.Error):
        if settings.backend != "sqlite":
            raise
        return EventLog(env={**env, "CREATE_TABLE": "no"})


def http_client(timeout_seconds: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout_seconds), follow_redirects=False, trust_env=False)


def build_governance(settings: Settings, manifest: Manifest) -> GovernanceTruth:
    if settings.fabric_url is not None:
        fabric = FabricHttpGovernance(http_client(2.0), settings.fabric_url)
        return RefreshingGovernanceTruth(fabric.fetch, settings.fabric_refresh_seconds)
    if settings.fabric_file is not None:
        return RefreshingGovernanceTruth(file_fetcher(settings.fabric_file), settings.fabric_refresh_seconds)
    return StaticGovernanceTruth(builtin_document(manifest))


def build_approvals(settings: Settings) -> ApprovalSource:
    if settings.warp_url is not None and settings.warp_token is not None:
        return WarpApprovals(http_client(settings.warp_timeout_ms / 1000), settings.warp_url, settings.warp_token)
    settings.warp_approvals_dir.mkdir(parents=True, exist_ok=True)
    return FileApprovals(settings.warp_approvals_dir)


def build_evidence(settings: Settings) -> EvidenceSource | None:
    if settings.shuttle_url is None:
        return None
    return ShuttleEvidence(http_client(settings.shuttle_timeout_ms / 1000), settings.shuttle_url)


def build_engine(
    settings: Settings,
    *,
    log: EventLog | None = None,
    governance: GovernanceTruth | None = None,
    approvals: ApprovalSource | None = None,
    evidence: EvidenceSource | None = None,
    clock: Clock = system_clock,
    observer: Observer | None = None,
) -> Engine:
    manifest = read_manifest()
    log = log or open_event_log(settings)
    uow = UnitOfWork(
        log,
        committer=GroupCommitter(log) if settings.group_commit else None,
        save_timeout=settings.db_timeout_seconds + 0.5,
    )
    context = Context(
        uow=uow,
        governance=governance or build_governance(settings, manifest),
        manifest=manifest,
        requested_mode=settings.service_mode,
        limits=limits_from(settings),
        clock=clock,
        observer=observer or NoObserver(),
    )
    return Engine.build(
        context,
        approvals=approvals or build_approvals(settings),
        evidence=evidence if evidence is not None else build_evidence(settings),
    )


def engine_from_environment(environ: Mapping[str, str] | None = None) -> Engine:
    return build_engine(load_settings(os.environ if environ is None else environ))


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
        now = self.engine.context.clock()
        limits = self.engine.context.limits
        values: dict[str, Any] = {
            "effective_mode": self.engine.context.mode(),
            "roles_held": self.leadership.leading(),
            "role_names": list(self.leadership.roles),
            "runners": {
                name: (status.last_error is not None, status.restarts) for name, status in self.follower.status.items()
            },
        }
        try:
            health = self.follower.health(self.engine.position())
            values["projections"] = {name: (runner.position, runner.lag) for name, runner in health.items()}
            values["runners"] = {name: (runner.failing is not None, runner.restarts) for name, runner in health.items()}
            values["rebuild_progress"] = {
                name: 1.0 if runner.rebuild_progress is None else runner.rebuild_progress
                for name, runner in health.items()
                if runner.version is not None
            }
            values["queue_depth"] = self.queries.revalidation_queue_depth()
            values["active_revalidate_required"] = self.queries.active_revalidate_required()
            budget_since = rfc3339(now - timedelta(seconds=limits.replay_budget_window_seconds))
            remaining: dict[str, int] = {}
            for tenant, spent in self.queries.replay_spends_since(budget_since):
                remaining[tenant] = min(
                    remaining.get(tenant, limits.replay_budget), max(limits.replay_budget - spent, 0)
                )
            values["budget_remaining"] = remaining
            velocity_since = rfc3339(now - timedelta(seconds=limits.velocity_window_seconds))
            values["breaker_open"] = {
                tenant: count >= limits.velocity_max
                for tenant, count in self.queries.activations_since(velocity_since).items()
            }
            values["role_holders"] = self.leadership.holders()
        except Exception:  # the database is down: the gauges that need it are left out
            pass
        return values

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


def build_system(
    settings: Settings,
    *,
    sink: ProvenanceSink | None = None,
    projections: Sequence[Projection] = EVERY_PROJECTION,
    **engine_parts: Any,
) -> System:
    store = ProjectionStore(connect(settings.database_url, settings.db_timeout_seconds), projections)
    tallies = DurableTallies(store.engine, store.tallies)
    engine = build_engine(settings, observer=tallies, **engine_parts)
    queries = Queries(store)
    if sink is None and settings.bobbin_path is not None:
        sink = BobbinProvenanceSink(settings.bobbin_path)
    publisher = ProvenancePublisher(store, engine.context.uow.log, sink) if sink is not None else None
    postgres_url = settings.database_url if settings.backend == "postgres" else None
    extra_steps = {BOBBIN: publisher.step} if publisher else {}
    leadership = Leadership([*store.projections, *extra_steps, EXPIRY, CHECKPOINTS], postgres_url)
    follower = Follower(
        store, engine.context.uow.log, listen_url=postgres_url, extra_steps=extra_steps, leadership=leadership
    )
    expiry = ExpiryProcessor(engine.context, engine.expiry, queries, engine.schedule)
    digest = build_digest(settings, store, engine)
    signer = digest.signer
    receipts = Receipts(engine.context.uow, digest, lambda statement: seal(statement, signer))
    return System(settings, engine, store, queries, follower, expiry, publisher, tallies, digest, leadership, receipts)


def build_digest(settings: Settings, store: ProjectionStore, engine: Engine) -> LogDigest:
    signer = load_signer(settings.audit_signing_key) if settings.audit_signing_key is not None else None
    return LogDigest(
        store.engine,
        store.writer,
        store.live[MERKLE],
        store.checkpoints,
        engine.context.uow.log,
        engine.context.clock,
        signer,
    )


def system_from_environment(environ: Mapping[str, str] | None = None) -> System:
    return build_system(load_settings(os.environ if environ is None else environ))
