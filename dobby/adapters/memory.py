"""In-memory adapters: real classes that record what they were given, for local use and tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from dobby.engine.kernel.ports import (
    Approval,
    Evidence,
    GovernanceDocument,
    ProvenanceRecord,
    UpstreamUnavailableError,
)


@dataclass
class StaticGovernanceTruth:
    """A governance document held in memory; `reachable` and `document` can be changed at any time."""

    document: GovernanceDocument | None
    reachable: bool = True

    def current(self) -> GovernanceDocument:
        if self.document is None:
            raise UpstreamUnavailableError("no governance document has been received")
        return self.document

    def is_reachable(self) -> bool:
        return self.reachable and self.document is not None

    def set_family(self, family: str, version: str | None) -> None:
        assert self.document is not None
        families = dict(self.document.families)
        if version is None:
            families.pop(family, None)
        else:
            families[family] = version
        self.document = replace(self.document, families=families)


@dataclass
class InMemoryApprovals:
    """Approvals by proposal id; `available` False makes every lookup fail like an unreachable Warp."""

    approvals: dict[str, Approval] = field(default_factory=dict)
    available: bool = True
    asked: list[str] = field(default_factory=list)

    def approval_for(self, proposal_id: str) -> Approval | None:
        self.asked.append(proposal_id)
        if not self.available:
            raise UpstreamUnavailableError("Warp is unavailable")
        return self.approvals.get(proposal_id)

    def put(self, approval: Approval) -> None:
        self.approvals[approval.proposal_id] = approval


@dataclass
class InMemoryEvidence:
    evidence: dict[str, Evidence] = field(default_factory=dict)
    available: bool = True

    def evidence_for(self, trace_id: str) -> Evidence | None:
        if not self.available:
            raise UpstreamUnavailableError("Shuttle is unavailable")
        return self.evidence.get(trace_id)


@dataclass
class InMemoryProvenanceSink:
    records: list[ProvenanceRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: ProvenanceRecord) -> None:
        with self._lock:
            self.records.append(record)

    def published_ids(self) -> set[str]:
        with self._lock:
            return {record.proposal_id for record in self.records}
