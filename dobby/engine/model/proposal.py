"""The Proposal stream: one candidate change carried through the approval-gated lifecycle (SPEC §1, §4.4–§4.7)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.errors import InvalidStateError
from dobby.engine.kernel.ports import Approval
from dobby.engine.kernel.shapes import Hash, Identifier, RecordId, Risk, TargetRef, Timestamp
from dobby.engine.model.approvals import Granted, WarpAnswer
from dobby.engine.model.chain import ChainedAggregate, ChainedEvent, EventPayload, Payload, chained
from dobby.engine.model.proposal_state import ProposalState as ProposalState  # noqa: PLC0414 (the stream's face)
from dobby.engine.model.proposal_state import ProposalView as ProposalView  # noqa: PLC0414 (the stream's face)
from dobby.engine.rules.approval import ApprovalJudgement
from dobby.engine.rules.judgement import MetricResult
from dobby.engine.rules.lifecycle import APPROVED, next_state
from dobby.engine.rules.summaries import Summary

ApprovalOutcome = Literal[
    "approved", "pending", "unavailable", "insufficient_approver", "rejected", "mismatched", "expired"
]
ExpiryReason = Literal["ttl", "revalidate_required"]


class SkippedGuard(Payload, frozen=True):
    guard: str
    reason: str


class Generated(EventPayload, frozen=True):
    """A passed replay was admitted as a proposal."""

    tenant_id: Identifier
    target: TargetRef
    risk: Risk
    replay_id: RecordId
    candidate_hash: Hash
    provenance_hash: Hash
    family_versions: dict[str, str]
    change: dict[str, Any]
    baseline: dict[str, Any]
    rationale: str | None
    approval_requirement: Literal["human", "any"]
    revalidate_required: bool
    expires_at: Timestamp
    request_hash: Hash
    auto_rollback: bool = True  # absent from proposals generated before SPEC §12
    change_hash: Hash | None = None
    """The hash of `change` (SPEC §3); absent from proposals generated before custody by content hash."""
    change_judged: bool | None = None
    """Whether the replay judged this very change (SPEC §4.4); absent (null) before custody by content hash."""


class ReplayValidated(EventPayload, frozen=True):
    """approve-check re-verified the replay evidence the proposal is bound to."""

    checks: list[str]


class ApprovalChecked(EventPayload, frozen=True):
    """approve-check asked Warp and the answer changed nothing (pending, unavailable, insufficient approver)."""

    outcome: ApprovalOutcome
    reasons: list[str]
    approval: WarpAnswer | None


class Approved(EventPayload, frozen=True):
    """Warp approved the proposal's exact binding in time, by a sufficient approver."""

    outcome: Literal["approved"]
    approval: Granted


class Blocked(EventPayload, frozen=True):
    """The proposal can never go live: its evidence or its approval failed."""

    reason: str
    reasons: list[str]
    from_state: Literal["generated", "replay_validated", "approved"]
    approval: WarpAnswer | None


class Activated(EventPayload, frozen=True):
    """The proposal became the target's active change."""

    approval_id: str | None
    change_hash: Hash | None = None
    """The hash of the content that went live; absent from activations stored before."""


class RolledBack(EventPayload, frozen=True):
    """The active proposal was withdrawn and the target's baseline re"""

    reason: str
    restored_baseline: dict[str, Any]


class Expired(EventPayload, frozen=True):
    """An open proposal outlived its TTL or needed revalidation."""

    reason: ExpiryReason


class RevalidationRequired(EventPayload, frozen=True):
    """A replay or Fabric drift made the proposal's evidence stale; the proposal is flagged."""

    reason: str


class Observed(EventPayload, frozen=True):
    """Live metrics of the active proposal, judged against its replay's baseline and contract (SPEC §12)."""

    metrics: dict[str, float | Summary]
    verdict: Literal["healthy", "regressed"]
    metric_results: list[MetricResult]


class ActivationScheduled(EventPayload, frozen=True):
    """The approved proposal is to be activated by the processor at `not_before` (SPEC §12)."""

    not_before: Timestamp


class ActivationUnscheduled(EventPayload, frozen=True):
    """The scheduled activation was cancelled."""

    scheduled_for: Timestamp


class ActivationSkipped(EventPayload, frozen=True):
    """At its time the scheduled activation was held back by these guards; it tries again each interval."""

    scheduled_for: Timestamp
    failed: list[SkippedGuard]


def _apply(state: ProposalState, event: ChainedEvent) -> ProposalState:
    payload = event.payload
    moved = next_state(state.state, event.type_name)
    assert moved is not None, f"{event.type_name} from {state.state}"
    updated = replace(state, state=moved, updated_at=rfc3339(event.timestamp), version=event.originator_version)
    if isinstance(event, Approved.Event):
        return replace(updated, approval=payload["approval"])
    if isinstance(event, ActivationScheduled.Event):
        return replace(updated, scheduled_for=payload["not_before"], skipped_guards=())
    if isinstance(event, ActivationSkipped.Event):
        return replace(updated, skipped_guards=tuple(failed["guard"] for failed in payload["failed"]))
    if moved != APPROVED or isinstance(event, ActivationUnscheduled.Event):  # nothing is scheduled any more
        updated = replace(updated, scheduled_for=None, skipped_guards=())
    if isinstance(event, Activated.Event):
        return replace(updated, activated_at=rfc3339(event.timestamp))
    if isinstance(event, RevalidationRequired.Event):
        return replace(updated, revalidate_required=True)
    if isinstance(event, Observed.Event):
        sizes = {name: value["n"] for name, value in payload["metrics"].items() if isinstance(value, dict)}
        return replace(updated, observed_n=sizes or state.observed_n)
    return updated


class Proposal(ChainedAggregate[ProposalState]):
    @staticmethod
    def evolve(state: ProposalState | None, event: ChainedEvent) -> ProposalState:
        if isinstance(event, Generated.Event):
            at = rfc3339(event.timestamp)
            payload = event.payload
            if payload.get("change_hash") is None:  # generated before change_hash: the hash of its change
                payload = {**payload, "change_hash": content_hash(payload["change"])}
            return ProposalState(
                proposal_id=str(event.originator_id),
                state="generated",
                approval=None,
                created_at=at,
                updated_at=at,
                activated_at=None,
                version=event.originator_version,
                proposed_by=event.actor,
                **payload,
            )
        assert state is not None
        return _apply(state, event)

    @classmethod
    def generate(cls, proposal_id: UUID, generated: Generated, *, actor: str, at: datetime) -> Proposal:
        proposal: Proposal = cls.start(generated, id=proposal_id, actor=actor, at=at)
        return proposal

    def _move(self, payload: EventPayload, actor: str, at: datetime) -> None:
        """Record `payload`'s event if the lifecycle allows it from the proposal's state (SPEC §1)."""
        name = type(payload).__name__
        if next_state(self.state.state, name) is None:
            raise InvalidStateError(f"proposal {self.id} is {self.state.state}; {name} is not allowed from there")
        self.record(payload, actor=actor, at=at)

    def validate_replay(self, checks: list[str], *, actor: str, at: datetime) -> None:
        self._move(ReplayValidated(checks), actor, at)

    def block(
        self, reason: str, reasons: list[str], *, actor: str, at: datetime, approval: Approval | None = None
    ) -> None:
        from_state: Any = self.state.state
        self._move(Blocked(reason, reasons, from_state, WarpAnswer.of(approval)), actor, at)

    def note_approval_check(
        self, judgement: ApprovalJudgement, approval: Approval | None, *, actor: str, at: datetime
    ) -> None:
        self._move(ApprovalChecked(judgement.outcome, list(judgement.reasons), WarpAnswer.of(approval)), actor, at)

    def approve(self, approval: Approval, *, actor: str, at: datetime) -> None:
        self._move(Approved("approved", Granted.of(approval)), actor, at)

    def activate(self, *, actor: str, at: datetime) -> None:
        assert self.state.state == APPROVED and not self.state.approval_expired(at)
        self._move(Activated(self.approval_id, self.state.content_hash), actor, at)

    def schedule(self, not_before: str, *, actor: str, at: datetime) -> None:
        self._move(ActivationScheduled(not_before), actor, at)

    def unschedule(self, *, actor: str, at: datetime) -> None:
        assert self.state.scheduled_for is not None
        self._move(ActivationUnscheduled(self.state.scheduled_for), actor, at)

    def skip_activation(self, failed: list[SkippedGuard], *, actor: str, at: datetime) -> None:
        assert self.state.scheduled_for is not None
        self._move(ActivationSkipped(self.state.scheduled_for, failed), actor, at)

    def observe(self, observed: Observed, *, actor: str, at: datetime) -> None:
        self._move(observed, actor, at)

    def roll_back(self, reason: str, *, actor: str, at: datetime) -> None:
        self._move(RolledBack(reason, self.state.baseline), actor, at)

    def expire(self, reason: ExpiryReason, *, actor: str, at: datetime) -> None:
        self._move(Expired(reason), actor, at)

    def require_revalidation(self, reason: str, *, actor: str, at: datetime) -> None:
        self._move(RevalidationRequired(reason), actor, at)

    @property
    def approval_id(self) -> str | None:
        return None if self.state.approval is None else str(self.state.approval["id"])


PROPOSAL_EVENTS = chained(
    Proposal,
    "dobby.engine.proposal",
    Generated,
    ReplayValidated,
    ApprovalChecked,
    Approved,
    Blocked,
    Activated,
    RolledBack,
    Expired,
    RevalidationRequired,
    Observed,
    ActivationScheduled,
    ActivationUnscheduled,
    ActivationSkipped,
)
