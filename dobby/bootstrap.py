"""The composition root: reads settings once and builds and wires everything else."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from dobby.adapters.fabric import RefreshingGovernanceTruth, builtin_document, file_fetcher
from dobby.adapters.memory import StaticGovernanceTruth
from dobby.adapters.settings import Settings, eventsourcing_env, load_settings
from dobby.adapters.warp import FileApprovals
from dobby.engine.clock import Clock, system_clock
from dobby.engine.modes import Manifest
from dobby.engine.ports import ApprovalSource, EvidenceSource, GovernanceTruth
from dobby.engine.service import Engine, EventLog, Limits

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = REPOSITORY_ROOT / "fabric-manifest.json"


def read_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))


def limits_from(settings: Settings) -> Limits:
    return Limits(
        neutral_sample_rate=settings.neutral_sample_rate,
        replay_budget=settings.replay_budget,
        replay_budget_window_seconds=settings.replay_budget_window_seconds,
        velocity_max=settings.promotion_velocity_max,
        velocity_window_seconds=settings.promotion_velocity_window_seconds,
        proposal_ttl_seconds=settings.proposal_ttl_seconds,
    )


def open_event_log(settings: Settings) -> EventLog:
    return EventLog(env=eventsourcing_env(settings))


def build_governance(settings: Settings, manifest: Manifest) -> GovernanceTruth:
    if settings.fabric_file is not None:
        return RefreshingGovernanceTruth(file_fetcher(settings.fabric_file), settings.fabric_refresh_seconds)
    return StaticGovernanceTruth(builtin_document(manifest))


def build_approvals(settings: Settings) -> ApprovalSource:
    settings.warp_approvals_dir.mkdir(parents=True, exist_ok=True)
    return FileApprovals(settings.warp_approvals_dir)


def build_engine(
    settings: Settings,
    *,
    log: EventLog | None = None,
    governance: GovernanceTruth | None = None,
    approvals: ApprovalSource | None = None,
    evidence: EvidenceSource | None = None,
    clock: Clock = system_clock,
) -> Engine:
    manifest = read_manifest()
    return Engine(
        log=log or open_event_log(settings),
        governance=governance or build_governance(settings, manifest),
        approvals=approvals or build_approvals(settings),
        evidence=evidence,
        manifest=manifest,
        requested_mode=settings.service_mode,
        limits=limits_from(settings),
        clock=clock,
    )


def bootstrap(environ: Mapping[str, str] | None = None) -> Engine:
    return build_engine(load_settings(os.environ if environ is None else environ))
