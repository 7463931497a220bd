"""Judging a Warp approval against a proposal (SPEC §4.5). Pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dobby.engine.ports import Approval

Outcome = Literal["approved", "pending", "unavailable", "insufficient_approver", "rejected", "mismatched", "expired"]
BLOCKING_OUTCOMES = frozenset({"rejected", "mismatched", "expired"})


@dataclass(frozen=True)
class ApprovalJudgement:
    outcome: Outcome
    reasons: tuple[str, ...]

    @property
    def blocks(self) -> bool:
        return self.outcome in BLOCKING_OUTCOMES


def approval_requirement(risk: str) -> Literal["human", "any"]:
    return "any" if risk == "low" else "human"


def judge_approval(
    approval: Approval | None,
    *,
    proposal_id: str,
    candidate_hash: str,
    provenance_hash: str,
    requirement: str,
    now: datetime,
) -> ApprovalJudgement:
    """Rejected, mismatched and expired block; pending and insufficient approver leave the proposal as it is."""
    if approval is None or approval.decision == "pending":
        return ApprovalJudgement("pending", ("no decision yet",))
    if approval.decision == "rejected":
        return ApprovalJudgement("rejected", (f"rejected by {approval.approver_id}",))
    mismatches = []
    if approval.proposal_id != proposal_id:
        mismatches.append("proposal_id")
    if approval.candidate_hash != candidate_hash:
        mismatches.append("candidate_hash")
    if approval.provenance_hash != provenance_hash:
        mismatches.append("provenance_hash")
    if mismatches:
        return ApprovalJudgement("mismatched", tuple(f"binding {name} differs" for name in mismatches))
    if approval.expires_at <= now:
        return ApprovalJudgement("expired", (f"approval expired at {approval.expires_at.isoformat()}",))
    if requirement == "human" and approval.approver_kind != "human":
        return ApprovalJudgement("insufficient_approver", ("a human approver is required",))
    return ApprovalJudgement("approved", ())
