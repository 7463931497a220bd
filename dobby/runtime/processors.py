"""Processors that act on projected state: the expiry processor and the Bobbin provenance publisher."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dobby.engine.commands.context import Context
from dobby.engine.commands.expiry import ExpiryCommands
from dobby.engine.commands.schedule import ScheduleCommands
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.errors import DobbyError
from dobby.engine.kernel.ports import ProvenanceRecord, ProvenanceSink
from dobby.engine.model.chain import ChainedEvent
from dobby.engine.model.proposal import Approved, Proposal
from dobby.engine.rules.judgement import family_drift
from dobby.engine.rules.lifecycle import OPEN_STATES
from dobby.engine.store.unit_of_work import EventLog
from dobby.projections.batches import Reader, read_batch
from dobby.projections.queries import Queries
from dobby.projections.store import ProjectionStore, ensure_tracking, lock_position, set_position

LOG = logging.getLogger("dobby.processors")
BOBBIN = "bobbin"


@dataclass
class ExpiryProcessor:
    """Expires open proposals that are due (TTL passed or revalidate_required) through the engine, so each
    expiry lands in the proposal's own stream; marks proposals whose bound families drifted from Fabric; fires the
    scheduled activations that are due (SPEC §12).
    Safe to run twice at once: the engine's optimistic concurrency lets each expiry happen once."""

    context: Context
    expiry: ExpiryCommands
    queries: Queries
    schedule: ScheduleCommands | None = None

    def tick(self) -> int:
        acted = self.mark_drifted() + self.fire_scheduled()
        for proposal_id in self.queries.due_for_expiry(rfc3339(self.context.now())):
            acted += self._expire(proposal_id)
        return acted

    def fire_scheduled(self) -> int:
        """Scheduled activations that are due, each activated if every guard passes now (SPEC §12)."""
        if self.schedule is None:
            return 0
        now = rfc3339(self.context.now())
        acted = 0
        for proposal_id, due in self.queries.scheduled():
            if due > now:
                break
            try:
                acted += self.schedule.fire(proposal_id) is not None
            except DobbyError as error:
                LOG.warning("could not fire the scheduled activation of %s: %s", proposal_id, error)
        return acted

    def mark_drifted(self) -> int:
        document = self.context.document()
        if document is None:
            return 0
        families = document.families
        acted = 0
        for view in self.queries.in_play():
            drift = family_drift(view["family_versions"], families)
            if not drift:
                continue
            try:
                marked = self.expiry.mark_revalidation_required(
                    view["proposal_id"], "fabric drift: " + ", ".join(drift)
                )
            except DobbyError as error:
                LOG.warning("could not mark %s: %s", view["proposal_id"], error)
                continue
            if marked is not None:
                acted += 1
                if marked.state in OPEN_STATES:
                    acted += self._expire(view["proposal_id"])
        return acted

    def _expire(self, proposal_id: str) -> int:
        try:
            return 0 if self.expiry.expire(proposal_id) is None else 1
        except DobbyError as error:
            LOG.warning("could not expire %s: %s", proposal_id, error)
            return 0


@dataclass
class ProvenancePublisher:
    """A tracked projection of Approved events into the Bobbin sink: the line is appended and fsynced before the
    position moves, and the sink skips proposals it already holds, so a crash never loses or doubles a line."""

    store: ProjectionStore
    log: EventLog
    sink: ProvenanceSink
    batch_size: int = 500

    def setup(self) -> None:
        with self.store.writer.begin() as connection:
            ensure_tracking(connection, self.store.tracking, BOBBIN)

    def step(self, read: Reader | None = None) -> int:
        with self.store.writer.begin() as connection:
            position = lock_position(connection, self.store.tracking, BOBBIN)
            batch = read(position) if read is not None else read_batch(self.log, position, self.batch_size)
            if not batch:
                return 0
            for recorded in batch:
                if isinstance(recorded.event, Approved.Event):
                    self.sink.append(self.record_for(recorded.event))
            set_position(connection, self.store.tracking, BOBBIN, batch[-1].position)
        return len(batch)

    def record_for(self, event: ChainedEvent) -> ProvenanceRecord:
        proposal: Any = self.log.repository.get(event.originator_id, version=event.originator_version)
        assert isinstance(proposal, Proposal)
        state = proposal.state
        approval = event.payload["approval"]
        return ProvenanceRecord(
            proposal_id=state.proposal_id,
            tenant_id=state.tenant_id,
            target=state.target,
            candidate_hash=state.candidate_hash,
            change_hash=state.content_hash,
            provenance_hash=state.provenance_hash,
            approval_id=approval["id"],
            approver={"id": approval["approver"], "kind": approval["kind"]},
            approved_at=rfc3339(event.timestamp),
            event_hash=event.event_hash,
        )
