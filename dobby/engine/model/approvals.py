"""Warp's answers as the Proposal stream stores them: what approve-check was told, and the approval it granted."""

from __future__ import annotations

from typing import Literal

from dobby.engine.kernel.clock import rfc3339
from dobby.engine.kernel.ports import Approval
from dobby.engine.kernel.shapes import Timestamp
from dobby.engine.model.chain import Payload


class Approver(Payload, frozen=True):
    id: str
    kind: Literal["human", "service"]


class Binding(Payload, frozen=True):
    candidate_hash: str
    provenance_hash: str
    change_hash: str | None = None
    """The change the approver bound, when Warp named it (SPEC §4.5); absent from approvals stored before."""

    @classmethod
    def of(cls, approval: Approval) -> Binding:
        return cls(approval.candidate_hash, approval.provenance_hash, approval.change_hash)


class WarpAnswer(Payload, frozen=True):
    approval_id: str
    decision: Literal["approved", "rejected", "pending"]
    approver: Approver
    binding: Binding
    decided_at: Timestamp
    expires_at: Timestamp

    @classmethod
    def of(cls, approval: Approval | None) -> WarpAnswer | None:
        if approval is None:
            return None
        return cls(
            approval_id=approval.approval_id,
            decision=approval.decision,
            approver=Approver(approval.approver_id, approval.approver_kind),
            binding=Binding.of(approval),
            decided_at=rfc3339(approval.decided_at),
            expires_at=rfc3339(approval.expires_at),
        )


class Granted(Payload, frozen=True):
    id: str
    approver: str
    kind: Literal["human", "service"]
    decided_at: Timestamp
    expires_at: Timestamp
    binding: Binding
    approvers: list[Approver] = []  # every approver of a quorum (SPEC §12); absent from approvals stored before

    @classmethod
    def of(cls, approval: Approval) -> Granted:
        return cls(
            id=approval.approval_id,
            approver=approval.approver_id,
            kind=approval.approver_kind,
            approvers=[Approver(one.id, one.kind) for one in approval.all_approvers],
            decided_at=rfc3339(approval.decided_at),
            expires_at=rfc3339(approval.expires_at),
            binding=Binding.of(approval),
        )
