"""The composition root: reads settings once and builds and wires everything else."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
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
from dobby.engine.kernel.clock import Clock, system_clock
from dobby.engine.kernel.ports import ApprovalSource, EvidenceSource, GovernanceTruth, Observer, ProvenanceSink
from dobby.engine.rules.modes import Manifest
from dobby.engine.service import Engine
from dobby.engine.store.group_commit import GroupCommitter
from dobby.engine.store.unit_of_work import EventLog, UnitOfWork
from dobby.projections.database import connect
from dobby.projections.digest import LogDigest
from dobby.projections.merkle_tree import MERKLE
from dobby.projections.queries import Queries
from dobby.projections.receipts import Receipts
from dobby.projections.store import EVERY_PROJECTION, ProjectionStore
from dobby.projections.views import Projection
from dobby.resources import read_manifest
from dobby.runtime.follower import Follower
from dobby.runtime.leadership import CHECKPOINTS, EXPIRY, Leadership
from dobby.runtime.processors import BOBBIN, ExpiryProcessor, ProvenancePublisher
from dobby.runtime.system import System
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
