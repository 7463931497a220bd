"""A proposal as its events leave it (ProposalState, a pure fold's value) and as every answer shows it (ProposalView,
derived from the state in `ProposalState.view` alone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dobby.engine.kernel.canonical import content_hash
from dobby.engine.kernel.clock import parse_rfc3339
from dobby.engine.kernel.shapes import Hash, Risk, TargetRef, Timestamp, View
from dobby.engine.rules.lifecycle import OPEN_STATES


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
