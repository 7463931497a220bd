"""The engine's view of the outside world: small protocols named for their role, and the values they return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

Readiness = Literal["green", "amber", "red"]
ApprovalDecision = Literal["approved", "rejected", "pending"]
ApproverKind = Literal["human", "service"]


@dataclass(frozen=True)
class GovernanceDocument:
    """Fabric's governance truth at one moment (SPEC §5)."""

    capability_class: str
    families: dict[str, str]
    target_types: tuple[str, ...]
    no_learn_zones: tuple[str, ...]
    readiness: Readiness


@dataclass(frozen=True)
class Approval:
    """Warp's answer for one proposal (SPEC §4.5)."""

    approval_id: str
    proposal_id: str
    decision: ApprovalDecision
    approver_id: str
    approver_kind: ApproverKind
    candidate_hash: str
    provenance_hash: str
    decided_at: datetime
    expires_at: datetime
    approvers: tuple[ApproverRef, ...] = ()
    """Everyone who approved (SPEC §12); one `approver` is a list of one."""
    change_hash: str | None = None
    """The change the approver bound (the binding's optional `change_hash`, SPEC §4.5)."""

    @property
    def all_approvers(self) -> tuple[ApproverRef, ...]:
        return self.approvers or (ApproverRef(self.approver_id, self.approver_kind),)


@dataclass(frozen=True)
class ApproverRef:
    id: str
    kind: ApproverKind


@dataclass(frozen=True)
class Evidence:
    """Shuttle's read-only evidence for a trace, reduced to a digest."""

    trace_id: str
    digest: str


@dataclass(frozen=True)
class ProvenanceRecord:
    """One Bobbin line (SPEC §5)."""

    proposal_id: str
    tenant_id: str
    target: dict[str, str]
    candidate_hash: str
    change_hash: str
    provenance_hash: str
    approval_id: str
    approver: dict[str, str]
    approved_at: str
    event_hash: str

    def as_line(self) -> dict[str, Any]:
        return {
            "marker": "bobbin",
            "schema": "dobby.provenance/v1",
            "proposal_id": self.proposal_id,
            "tenant_id": self.tenant_id,
            "target": self.target,
            "candidate_hash": self.candidate_hash,
            "change_hash": self.change_hash,
            "provenance_hash": self.provenance_hash,
            "approval_id": self.approval_id,
            "approver": self.approver,
            "approved_at": self.approved_at,
            "event_hash": self.event_hash,
        }


class UpstreamUnavailableError(Exception):
    """An upstream did not answer in time, or answered something unusable. Adapters raise only this."""


class GovernanceTruth(Protocol):
    def current(self) -> GovernanceDocument:
        """The last good document; raises UpstreamUnavailableError when there has never been one."""
        ...

    def is_reachable(self) -> bool:
        """Whether the last refresh succeeded."""
        ...


class ApprovalSource(Protocol):
    def approval_for(self, proposal_id: str) -> Approval | None:
        """The approval for `proposal_id`, None when there is none; UpstreamUnavailableError on failure."""
        ...


class EvidenceSource(Protocol):
    def evidence_for(self, trace_id: str) -> Evidence | None:
        """Evidence for a trace, None when there is none; UpstreamUnavailableError on failure."""
        ...


class ProvenanceSink(Protocol):
    def append(self, record: ProvenanceRecord) -> None:
        """Append one record durably."""
        ...

    def published_ids(self) -> set[str]:
        """Proposal ids already present in the sink."""
        ...


class Observer(Protocol):
    def count(self, metric: str, labels: Mapping[str, str]) -> None:
        """One more of `metric` with `labels`: answers that store nothing (refusals, duplicates) (SPEC §6)."""
        ...
