"""The Proposal stream: one candidate change carried through the approval-gated lifecycle (SPEC §1, §4.4–§4.7)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.clock import parse_rfc3339, rfc3339
from dobby.engine.kernel.errors import InvalidStateError
from dobby.engine.kernel.ports import Approval
from dobby.engine.kernel.shapes import Hash, Risk, TargetRef, Timestamp, View
from dobby.engine.model import payloads as stored
from dobby.engine.model.chain import ChainedAggregate, ChainedCreated, ChainedEvent, named_in_log
from dobby.engine.rules.approval import ApprovalJudgement
from dobby.engine.rules.lifecycle import APPROVED, OPEN_STATES, next_state


class ApproverView(View, frozen=True):
    id: str
    kind: str


class ApprovalView(View, frozen=True):
    id: str
    approver: str
    kind: str
    approvers: list[ApproverView]
    expires_at: Timestamp


class ProposalView(View, frozen=True):
    """A proposal as it stands (SPEC §4.8)."""

    proposal_id: str
    tenant_id: str
    target: TargetRef
    risk: Risk
    state: str
    replay_id: str
    candidate_hash: Hash
    change_hash: Hash
    """The hash of `change` (SPEC §3), judged or not."""
    change_judged: bool | None
    """Whether the replay judged this change; null for proposals generated before change_hash existed."""
    provenance_hash: Hash
    family_versions: dict[str, str]
    change: dict[str, Any]
    baseline: dict[str, Any]
    rationale: str | None
    approval_requirement: str
    approval: ApprovalView | None
    revalidate_required: bool
    auto_rollback: bool
    scheduled_for: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp
    activated_at: Timestamp | None
    version: int


@dataclass(frozen=True)
class ProposalState:
    proposal_id: str
    tenant_id: str
    target: dict[str, str]
    risk: str
    state: str
    replay_id: str
    candidate_hash: str
    provenance_hash: str
    family_versions: dict[str, str]
    change: dict[str, Any]
    baseline: dict[str, Any]
    rationale: str | None
    approval_requirement: str
    approval: dict[str, Any] | None
    revalidate_required: bool
    created_at: str
    updated_at: str
    expires_at: str
    activated_at: str | None
    version: int
    request_hash: str
    proposed_by: str = ""
    """The actor of the Generated event: never counted among its approvers (SPEC §12)."""
    auto_rollback: bool = True
    """Whether an observed regression rolls the active proposal back by itself (SPEC §12)."""
    scheduled_for: str | None = None
    """When a scheduled activation fires (SPEC §12)."""
    skipped_guards: tuple[str, ...] = ()
    """The guards that held the scheduled activation back when it last tried."""
    change_hash: str | None = None
    """The hash of `change`; None only in a fold stored before change_hash existed (the view computes it)."""
    change_judged: bool | None = None
    """Whether the replay judged the change; None for proposals generated before change_hash existed."""

    @property
    def content_hash(self) -> str:
        """The hash of the change this proposal would put live (SPEC §3)."""
        return self.change_hash or content_hash(self.change)

    @property
    def binding_needs_change_hash(self) -> bool:
        """An approval must name the change itself when the replay did not judge it (SPEC §4.5)."""
        return self.change_judged is False

    observed_n: dict[str, int] | None = None
    """The n of each summary in the latest observation: the next one is cumulative, so never smaller (SPEC §14)."""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def is_past_ttl(self, now: datetime) -> bool:
        return parse_rfc3339(self.expires_at) <= now

    def approval_expired(self, now: datetime) -> bool:
        return self.approval is None or parse_rfc3339(self.approval["expires_at"]) <= now

    def view(self) -> ProposalView:
        granted = self.approval
        return ProposalView(
            proposal_id=self.proposal_id,
            tenant_id=self.tenant_id,
            target=TargetRef(self.target["type"], self.target["id"]),
            risk=self.risk,  # type: ignore[arg-type]
            state=self.state,
            replay_id=self.replay_id,
            candidate_hash=self.candidate_hash,
            change_hash=self.content_hash,
            change_judged=self.change_judged,
            provenance_hash=self.provenance_hash,
            family_versions=self.family_versions,
            change=self.change,
            baseline=self.baseline,
            rationale=self.rationale,
            approval_requirement=self.approval_requirement,
            approval=None if granted is None else _approval_view(granted),
            revalidate_required=self.revalidate_required,
            auto_rollback=self.auto_rollback,
            scheduled_for=self.scheduled_for,
            created_at=self.created_at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
            activated_at=self.activated_at,
            version=self.version,
        )


def _approval_view(granted: dict[str, Any]) -> ApprovalView:
    """An approval as it was stored; one stored before quorums has its one approver as the list."""
    approvers = granted.get("approvers") or [{"id": granted["approver"], "kind": granted["kind"]}]
    return ApprovalView(
        granted["id"],
        granted["approver"],
        granted["kind"],
        [ApproverView(one["id"], one["kind"]) for one in approvers],
        granted["expires_at"],
    )


class Generated(ChainedCreated):
    """A passed replay was admitted as a proposal."""


class ReplayValidated(ChainedEvent):
    """approve-check re-verified the replay evidence the proposal is bound to."""


class ApprovalChecked(ChainedEvent):
    """approve-check asked Warp and the answer changed nothing (pending, unavailable, insufficient approver)."""


class Approved(ChainedEvent):
    """Warp approved the proposal's exact binding in time, by a sufficient approver."""


class Blocked(ChainedEvent):
    """The proposal can never go live: its evidence or its approval failed."""


class Activated(ChainedEvent):
    """The proposal became the target's active change."""


class RolledBack(ChainedEvent):
    """The active proposal was withdrawn and the target's baseline restored."""


class Expired(ChainedEvent):
    """An open proposal outlived its TTL or needed revalidation."""


class RevalidationRequired(ChainedEvent):
    """A replay or Fabric drift made the proposal's evidence stale; the proposal is flagged."""


class Observed(ChainedEvent):
    """Live metrics of the active proposal, judged against its replay's baseline and contract (SPEC §12)."""


class ActivationScheduled(ChainedEvent):
    """The approved proposal is to be activated by the processor at `not_before` (SPEC §12)."""


class ActivationUnscheduled(ChainedEvent):
    """The scheduled activation was cancelled."""


class ActivationSkipped(ChainedEvent):
    """At its time the scheduled activation was held back by these guards; it tries again each interval."""


PROPOSAL_EVENTS: tuple[type[ChainedEvent], ...] = (
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


def _apply(state: ProposalState, event: ChainedEvent) -> ProposalState:
    payload = event.payload
    moved = next_state(state.state, event.type_name)
    assert moved is not None, f"{event.type_name} from {state.state}"
    updated = replace(state, state=moved, updated_at=rfc3339(event.timestamp), version=event.originator_version)
    if isinstance(event, Approved):
        return replace(updated, approval=payload["approval"])
    if isinstance(event, ActivationScheduled):
        return replace(updated, scheduled_for=payload["not_before"], skipped_guards=())
    if isinstance(event, ActivationSkipped):
        return replace(updated, skipped_guards=tuple(failed["guard"] for failed in payload["failed"]))
    if moved != APPROVED or isinstance(event, ActivationUnscheduled):  # nothing is scheduled any more
        updated = replace(updated, scheduled_for=None, skipped_guards=())
    if isinstance(event, Activated):
        return replace(updated, activated_at=rfc3339(event.timestamp))
    if isinstance(event, RevalidationRequired):
        return replace(updated, revalidate_required=True)
    if isinstance(event, Observed):
        sizes = {name: value["n"] for name, value in payload["metrics"].items() if isinstance(value, dict)}
        return replace(updated, observed_n=sizes or state.observed_n)
    return updated


class Proposal(ChainedAggregate[ProposalState]):
    @staticmethod
    def evolve(state: ProposalState | None, event: ChainedEvent) -> ProposalState:
        if isinstance(event, Generated):
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
    def generate(cls, proposal_id: UUID, generated: stored.Generated, *, actor: str, at: datetime) -> Proposal:
        proposal: Proposal = cls.start(Generated, id=proposal_id, payload=generated, actor=actor, at=at)
        return proposal

    def _move(self, event_class: type[ChainedEvent], payload: stored.Payload, actor: str, at: datetime) -> None:
        if next_state(self.state.state, event_class.__name__) is None:
            raise InvalidStateError(
                f"proposal {self.id} is {self.state.state}; {event_class.__name__} is not allowed from there"
            )
        self.record(event_class, payload=payload, actor=actor, at=at)

    def validate_replay(self, checks: list[str], *, actor: str, at: datetime) -> None:
        self._move(ReplayValidated, stored.ReplayValidated(checks), actor, at)

    def block(
        self, reason: str, reasons: list[str], *, actor: str, at: datetime, approval: Approval | None = None
    ) -> None:
        from_state: Any = self.state.state
        self._move(Blocked, stored.Blocked(reason, reasons, from_state, _warp(approval)), actor, at)

    def note_approval_check(
        self, judgement: ApprovalJudgement, approval: Approval | None, *, actor: str, at: datetime
    ) -> None:
        payload = stored.ApprovalChecked(judgement.outcome, list(judgement.reasons), _warp(approval))
        self._move(ApprovalChecked, payload, actor, at)

    def approve(self, approval: Approval, *, actor: str, at: datetime) -> None:
        granted = stored.Granted(
            id=approval.approval_id,
            approver=approval.approver_id,
            kind=approval.approver_kind,
            approvers=[stored.Approver(one.id, one.kind) for one in approval.all_approvers],
            decided_at=rfc3339(approval.decided_at),
            expires_at=rfc3339(approval.expires_at),
            binding=_binding(approval),
        )
        self._move(Approved, stored.Approved("approved", granted), actor, at)

    def activate(self, *, actor: str, at: datetime) -> None:
        assert self.state.state == APPROVED and not self.state.approval_expired(at)
        self._move(Activated, stored.Activated(self.approval_id, self.state.content_hash), actor, at)

    def schedule(self, not_before: str, *, actor: str, at: datetime) -> None:
        self._move(ActivationScheduled, stored.ActivationScheduled(not_before), actor, at)

    def unschedule(self, *, actor: str, at: datetime) -> None:
        assert self.state.scheduled_for is not None
        self._move(ActivationUnscheduled, stored.ActivationUnscheduled(self.state.scheduled_for), actor, at)

    def skip_activation(self, failed: list[stored.SkippedGuard], *, actor: str, at: datetime) -> None:
        assert self.state.scheduled_for is not None
        self._move(ActivationSkipped, stored.ActivationSkipped(self.state.scheduled_for, failed), actor, at)

    def observe(self, observed: stored.Observed, *, actor: str, at: datetime) -> None:
        self._move(Observed, observed, actor, at)

    def roll_back(self, reason: str, *, actor: str, at: datetime) -> None:
        self._move(RolledBack, stored.RolledBack(reason, self.state.baseline), actor, at)

    def expire(self, reason: stored.ExpiryReason, *, actor: str, at: datetime) -> None:
        self._move(Expired, stored.Expired(reason), actor, at)

    def require_revalidation(self, reason: str, *, actor: str, at: datetime) -> None:
        self._move(RevalidationRequired, stored.RevalidationRequired(reason), actor, at)

    @property
    def approval_id(self) -> str | None:
        return None if self.state.approval is None else str(self.state.approval["id"])


def _warp(approval: Approval | None) -> stored.WarpAnswer | None:
    if approval is None:
        return None
    return stored.WarpAnswer(
        approval_id=approval.approval_id,
        decision=approval.decision,
        approver=stored.Approver(approval.approver_id, approval.approver_kind),
        binding=_binding(approval),
        decided_at=rfc3339(approval.decided_at),
        expires_at=rfc3339(approval.expires_at),
    )


def _binding(approval: Approval) -> stored.Binding:
    return stored.Binding(approval.candidate_hash, approval.provenance_hash, approval.change_hash)


named_in_log("dobby.engine.proposal", Proposal, *PROPOSAL_EVENTS)
