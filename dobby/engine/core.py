"""The engine's plumbing: the event store, service modes, loading and saving streams, retries on conflict."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, PersistenceError

from dobby.engine.canonical import target_id_for
from dobby.engine.chain import ChainedAggregate, ChainedEvent, chain_is_valid
from dobby.engine.clock import Clock, system_clock
from dobby.engine.errors import (
    ConcurrentModificationError,
    ModeForbidsError,
    NotFoundError,
    ServiceUnavailableError,
    StaleReadError,
    Violation,
)
from dobby.engine.group_commit import BackpressureError, CommitTimeoutError, GroupCommitter
from dobby.engine.ledger import Ledger
from dobby.engine.modes import Alignment, Manifest, Mode, align, effective_mode, required_mode
from dobby.engine.ports import (
    ApprovalSource,
    EvidenceSource,
    GovernanceDocument,
    GovernanceTruth,
    UpstreamUnavailableError,
)
from dobby.engine.proposal import Proposal
from dobby.engine.snapshots import SNAPSHOT_INTERVAL, crossed_interval, register_state_transcodings
from dobby.engine.target import Target

A = TypeVar("A", bound=ChainedAggregate[Any])
T = TypeVar("T")


class EventLog(Application[UUID]):
    """dobby's event store: every stream in one application, so one save is atomic across aggregates."""

    name = "dobby"
    is_snapshotting_enabled = True

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_state_transcodings(transcoder)


@dataclass(frozen=True)
class Limits:
    neutral_sample_rate: float = 0.25
    replay_budget: int = 20
    replay_budget_window_seconds: float = 3600
    velocity_max: int = 5
    velocity_window_seconds: float = 3600
    proposal_ttl_seconds: int = 604_800


@dataclass(frozen=True)
class Outcome:
    """A command's answer: the JSON body, and whether it created something (201) or found it (200)."""

    body: dict[str, Any]
    created: bool = True
    position: int | None = None


@dataclass
class EngineCore:
    """What every command stands on: the log, the upstream ports, the limits, the clock and the save path."""

    log: EventLog
    governance: GovernanceTruth
    approvals: ApprovalSource
    evidence: EvidenceSource | None
    manifest: Manifest
    requested_mode: Mode = Mode.proposal_only
    limits: Limits = field(default_factory=Limits)
    clock: Clock = system_clock
    persistence_reachable: Callable[[], bool] = lambda: True
    committer: GroupCommitter | None = None
    save_timeout: float = 2.5
    max_attempts: int = 30
    snapshot_interval: int = SNAPSHOT_INTERVAL

    def alignment(self) -> Alignment:
        document = None
        if self.governance.is_reachable():
            try:
                document = self.governance.current()
            except UpstreamUnavailableError:
                document = None
        return align(self.manifest, document)

    def mode(self) -> Mode:
        return effective_mode(self.requested_mode, self.persistence_reachable(), self.alignment())

    def _require_mode(self, command: str) -> Mode:
        mode = self.mode()
        needed = required_mode(command)
        if mode == Mode.warmup:
            raise ServiceUnavailableError("the service is in warmup: persistence is unreachable", "service_mode")
        if mode < needed:
            message = f"effective mode {mode.name} forbids {command}, which needs {needed.name}"
            raise ModeForbidsError(
                message,
                [
                    Violation(
                        "mode_forbids",
                        message,
                        extra={"effective_mode": mode.name, "required_mode": needed.name},
                    )
                ],
            )
        return mode

    def _fabric(self) -> GovernanceDocument:
        try:
            return self.governance.current()
        except UpstreamUnavailableError as error:
            raise ServiceUnavailableError(f"Fabric unavailable: {error}", "fabric_unavailable") from error

    def _get(self, kind: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Any = self.log.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, kind):
            return None
        return aggregate

    def _save(self, *aggregates: ChainedAggregate[Any]) -> int:
        before = {aggregate.id: aggregate.version - len(aggregate.pending_events) for aggregate in aggregates}
        position = self._record(*aggregates)
        for aggregate in aggregates:
            if isinstance(aggregate, (Ledger, Target)):
                mark = crossed_interval(before[aggregate.id], aggregate.version, self.snapshot_interval)
                if mark is not None:
                    self._snapshot(aggregate.id, mark)
        return position

    def _snapshot(self, aggregate_id: UUID, version: int) -> None:
        """A snapshot is an optimisation: failing to take one never fails the command that triggered it."""
        with contextlib.suppress(PersistenceError):
            self.log.take_snapshot(aggregate_id, version=version)

    def _record(self, *aggregates: ChainedAggregate[Any]) -> int:
        if self.committer is not None:
            events = [event for aggregate in aggregates for event in aggregate.collect_events()]
            try:
                return self.committer.save(events, timeout=self.save_timeout)
            except CommitTimeoutError as error:
                raise ServiceUnavailableError(str(error), "persistence_unavailable") from error
            except BackpressureError as error:
                raise ServiceUnavailableError(str(error), "backpressure") from error
        recordings = self.log.save(*aggregates)
        return max(recording.notification.id for recording in recordings)

    def close(self) -> None:
        if self.committer is not None:
            self.committer.close()
        self.log.close()

    def position(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    def _transact(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it saves without a version conflict; persistence failures become 503s."""
        for number in range(self.max_attempts):
            try:
                return attempt()
            except (IntegrityError, StaleReadError):
                time.sleep(random.uniform(0, 0.002 * min(number + 1, 10)))
            except PersistenceError as error:
                raise ServiceUnavailableError(f"persistence unavailable: {error}", "persistence_unavailable") from error
        raise ConcurrentModificationError(f"gave up after {self.max_attempts} conflicting attempts")

    def _now(self) -> datetime:
        return self.clock()

    def _proposal_uuid(self, proposal_id: str) -> UUID:
        pid = parse_uuid(proposal_id)
        if pid is None:
            raise NotFoundError(f"no proposal {proposal_id!r}")
        return pid

    def _load_proposal(self, pid: UUID) -> Proposal:
        proposal = self._get(Proposal, pid)
        if proposal is None:
            raise NotFoundError(f"no proposal {pid}")
        return proposal

    def _target_of(self, proposal: Proposal) -> Target | None:
        state = proposal.state
        return self._get(Target, target_id_for(state.tenant_id, state.target["type"], state.target["id"]))

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        return [event for event in self.log.events.get(stream_id) if isinstance(event, ChainedEvent)]

    def verify_stream(self, stream_id: UUID) -> bool:
        return chain_is_valid(self.stream(stream_id))


def parse_uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None
