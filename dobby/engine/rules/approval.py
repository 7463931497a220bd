"""Judging a Warp approval against a proposal (SPEC §4.5). Pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dobby.engine.kernel.ports import Approval

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


def approvers_needed(risk: str, quorum_high: int, quorum_critical: int) -> int:
    """Distinct approvers a proposal of `risk` needs (SPEC §12): high and critical by setting, the others one."""
    return {"high": quorum_high, "critical": quorum_critical}.get(risk, 1)


def judge_approval(
    approval: Approval | None,
    *,
    proposal_id: str,
    candidate_hash: str,
    provenance_hash: str,
    requirement: str,
    now: datetime,
    needed: int = 1,
    proposer: str = "",
    skew_seconds: float = 300,
    change_hash: str | None = None,
    change_hash_required: bool = False,
) -> ApprovalJudgement:
    """Rejected, mismatched and expired block; pending and insufficient approver leave the proposal as it is.

    An approval decided more than `skew_seconds` after `now` is not valid yet: pending (SPEC §5).
    A `change_hash` the binding names must equal the proposal's; a proposal whose change was not judged
    (`change_hash_required`) needs one, else the binding is mismatched (SPEC §4.5).

    Short of `needed` distinct approvers (humans, when a human is required) the answer is insufficient_approver;
    the proposer never counts among them."""
    if approval is None or approval.decision == "pending":
        return ApprovalJudgement("pending", ("no decision yet",))
    if approval.decided_at > now + timedelta(seconds=skew_seconds):  # SPEC §5: not yet valid, whatever it says
        ahead = (approval.decided_at - now).total_seconds()
        reason = (
            f"decided_at {approval.decided_at.isoformat()} is {ahead:.0f} s ahead of dobby's clock, more than the "
            f"{skew_seconds:g} s of DOBBY_CLOCK_SKEW_SECONDS: not yet valid"
        )
        return ApprovalJudgement("pending", (reason,))
    if approval.decision == "rejected":
        return ApprovalJudgement("rejected", (f"rejected by {approval.approver_id}",))
    mismatches = []
    if approval.proposal_id != proposal_id:
        mismatches.append("proposal_id")
    if approval.candidate_hash != candidate_hash:
        mismatches.append("candidate_hash")
    if approval.provenance_hash != provenance_hash:
        mismatches.append("provenance_hash")
    reasons = [f"binding {name} differs" for name in mismatches]
    if approval.change_hash is None and change_hash_required:
        reasons.append("binding change_hash is required: the replay did not judge this change")
    elif approval.change_hash is not None and approval.change_hash != change_hash:
        reasons.append(f"binding change_hash differs: {approval.change_hash} bound, the proposal's is {change_hash}")
    if reasons:
        return ApprovalJudgement("mismatched", tuple(reasons))
    if approval.expires_at <= now:
        return ApprovalJudgement("expired", (f"approval expired at {approval.expires_at.isoformat()}",))
    approvers = approval.all_approvers
    counted = {one.id for one in approvers if one.id != proposer and (requirement != "human" or one.kind == "human")}
    if len(counted) >= needed:
        return ApprovalJudgement("approved", ())
    kind = "human " if requirement == "human" else ""
    reasons = [f"{needed} distinct {kind}approver{'s' if needed > 1 else ''} required, {len(counted)} counted"]
    if requirement == "human" and not any(one.kind == "human" for one in approvers):
        reasons.insert(0, "a human approver is required")
    if any(one.id == proposer for one in approvers):
        reasons.append(f"the proposer {proposer} may not approve their own proposal")
    return ApprovalJudgement("insufficient_approver", tuple(reasons))
