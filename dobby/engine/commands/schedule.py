"""Scheduled activation (SPEC §12): `activate` with `not_before`, `unschedule`, and the processor firing what is due.

At request time only mode and state are checked (refused as `activate` refuses); every other guard is judged when
it fires, by the same activation command, with actor `dobby:scheduler`. A firing held back by a guard appends
`ActivationSkipped` when the set of failing guards changes, and tries again each interval until the approval
expires (the activation then blocks the proposal, as any activation would).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from dobby.engine.commands.activation import ActivationCommands
from dobby.engine.commands.context import Context, Scope, transaction
from dobby.engine.commands.loading import ProposalAnswer, answer, load_proposal, proposal_uuid
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.kernel.clock import parse_moment, parse_rfc3339, rfc3339
from dobby.engine.kernel.errors import (
    InvalidInputError,
    InvalidStateError,
    ModeForbidsError,
    RuleViolationError,
    Violation,
)
from dobby.engine.kernel.shapes import UNSET, Moment, RecordId, Shape, UnsetType, View
from dobby.engine.model import proposal as stored
from dobby.engine.rules.lifecycle import APPROVED
from dobby.engine.rules.modes import Mode, required_mode

SCHEDULER_ACTOR = "dobby:scheduler"


class Activate(Shape, frozen=True):
    """Activate an approved proposal now, or at `not_before` (RFC 3339, before its approval expires)."""

    proposal_id: RecordId
    not_before: Moment | UnsetType = UNSET


class ScheduledAnswer(View, frozen=True, kw_only=True):
    proposal_id: str
    state: str
    scheduled_for: str
    position: int


@dataclass
class ScheduleCommands:
    context: Context
    activations: ActivationCommands

    def activate(self, body: Activate, *, actor: str, tenants: Scope = None) -> ProposalAnswer | ScheduledAnswer:
        """Activate now (no `not_before`, or one already past), else schedule; a second schedule replaces the first."""
        if isinstance(body.not_before, UnsetType):
            return self.activations.activate(ProposalRef(body.proposal_id), actor=actor, tenants=tenants)
        context = self.context
        moment = parse_moment(body.not_before, "not_before")
        if moment <= context.now():
            return self.activations.activate(ProposalRef(body.proposal_id), actor=actor, tenants=tenants)
        mode = context.require_mode("propose")  # writes the proposal's stream: anything but warmup and observe_only
        return self._schedule(proposal_uuid(body.proposal_id), moment, mode, tenants, actor=actor)

    @transaction
    def _schedule(
        self, now: datetime, pid: UUID, moment: datetime, mode: Mode, tenants: Scope, *, actor: str
    ) -> ScheduledAnswer:
        proposal = load_proposal(self.context, pid, tenants)
        state = proposal.state
        if mode < required_mode("activate"):
            message = f"effective mode {mode.name} forbids activate, which needs promotion_enabled"
            raise ModeForbidsError(message, [Violation("mode_forbids", message)])
        if state.state != APPROVED:
            raise InvalidStateError(f"state is {state.state}; activation needs approved")
        if state.approval is not None and parse_rfc3339(state.approval["expires_at"]) <= moment:
            message = f"not_before must be before the approval expires at {state.approval['expires_at']}"
            raise InvalidInputError(message, [Violation("out_of_range", message, "not_before")])
        proposal.schedule(rfc3339(moment), actor=actor, at=now)
        position = self.context.uow.save(proposal)
        return ScheduledAnswer(
            proposal_id=str(pid), state=proposal.state.state, scheduled_for=rfc3339(moment), position=position
        )

    def unschedule(self, body: ProposalRef, *, actor: str, tenants: Scope = None) -> ProposalAnswer:
        self.context.require_mode("propose")
        return self._unschedule(proposal_uuid(body.proposal_id), tenants, actor=actor)

    @transaction
    def _unschedule(self, now: datetime, pid: UUID, tenants: Scope, *, actor: str) -> ProposalAnswer:
        proposal = load_proposal(self.context, pid, tenants)
        if proposal.state.state != APPROVED or proposal.state.scheduled_for is None:
            raise InvalidStateError(f"proposal {pid} has no scheduled activation")
        proposal.unschedule(actor=actor, at=now)
        return answer(proposal, self.context.uow.save(proposal))

    def fire(self, proposal_id: str) -> ProposalAnswer | None:
        """Activate a scheduled proposal that is due, if every guard passes now; None when it is not (yet)."""
        context = self.context
        if context.mode() < Mode.promotion_enabled:
            return None  # it fires only in promotion_enabled; until then it waits, writing nothing
        proposal = load_proposal(context, proposal_uuid(proposal_id))
        due = proposal.state.scheduled_for
        if proposal.state.state != APPROVED or due is None or parse_rfc3339(due) > context.now():
            return None
        try:
            return self.activations.activate(ProposalRef(proposal_id), actor=SCHEDULER_ACTOR)
        except RuleViolationError as refusal:
            self._skipped(proposal_id, refusal)
            return None

    def _skipped(self, proposal_id: str, refusal: RuleViolationError) -> None:
        failed = [
            stored.SkippedGuard(str(violation.extra.get("guard", violation.code)), violation.message)
            for violation in refusal.violations
        ]
        self._note_skipped(proposal_uuid(proposal_id), failed)

    @transaction
    def _note_skipped(self, now: datetime, pid: UUID, failed: list[stored.SkippedGuard]) -> None:
        proposal = load_proposal(self.context, pid)
        state = proposal.state
        if state.state != APPROVED or state.scheduled_for is None:
            return  # the refusal blocked it (approval expired), or it was unscheduled meanwhile
        if tuple(guard.guard for guard in failed) == state.skipped_guards:
            return  # the same guards as last time: nothing new to record
        proposal.skip_activation(failed, actor=SCHEDULER_ACTOR, at=now)
        self.context.uow.save(proposal)
