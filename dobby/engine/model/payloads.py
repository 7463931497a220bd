"""The stored payload of every event type, as types: `schemas/events/` is generated from these, and the state
machine checks every payload it stores against them."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from dobby.engine.kernel.shapes import Hash, Identifier, RecordId, Risk, TargetRef, Timestamp
from dobby.engine.rules.intake import IntakeSignal
from dobby.engine.rules.judgement import MetricResult, Metrics, ThresholdContract
from dobby.engine.rules.summaries import Summary

Reasons = list[str]
ApprovalOutcome = Literal[
    "approved", "pending", "unavailable", "insufficient_approver", "rejected", "mismatched", "expired"
]


class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An event payload: every field required (optional ones are stored as null)."""


class EventPayload(Payload, frozen=True):
    """The payload of one event type, named as the event class it belongs to."""


class Approver(Payload, frozen=True):
    id: str
    kind: Literal["human", "service"]


class Binding(Payload, frozen=True):
    candidate_hash: str
    provenance_hash: str
    change_hash: str | None = None
    """The change the approver bound, when Warp named it (SPEC §4.5); absent from approvals stored before."""


class WarpAnswer(Payload, frozen=True):
    approval_id: str
    decision: Literal["approved", "rejected", "pending"]
    approver: Approver
    binding: Binding
    decided_at: Timestamp
    expires_at: Timestamp


class Granted(Payload, frozen=True):
    id: str
    approver: str
    kind: Literal["human", "service"]
    decided_at: Timestamp
    expires_at: Timestamp
    binding: Binding
    approvers: list[Approver] = []  # every approver of a quorum (SPEC §12); absent from approvals stored before


class RunRecorded(EventPayload, frozen=True):
    body: IntakeSignal
    run_hash: Hash
    provenance_hash: Hash
    sampled: bool
    learning_signal: bool
    evidence_digest: str | None
    recorded_at: Timestamp


class ReplayEvaluated(EventPayload, frozen=True):
    tenant_id: Identifier
    target: TargetRef
    family_versions: dict[str, str]
    metrics: Metrics
    threshold_contract: ThresholdContract
    workload_similar: bool
    run_ids: list[str]
    verdict: Literal["passed", "rejected", "revalidate_required", "inconclusive"]
    reasons: Reasons
    metric_results: list[MetricResult]
    candidate_hash: Hash
    provenance_hash: Hash
    request_hash: Hash
    evaluated_at: Timestamp
    change: dict[str, Any] | None = None
    """The candidate configuration that was judged (SPEC §4.3); absent from replays stored before."""
    change_hash: Hash | None = None
    """Its hash, inside candidate_hash; null when the replay named no change."""


class Generated(EventPayload, frozen=True):
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
    checks: Reasons


class Observed(EventPayload, frozen=True):
    metrics: dict[str, float | Summary]
    verdict: Literal["healthy", "regressed"]
    metric_results: list[MetricResult]


class ActivationScheduled(EventPayload, frozen=True):
    not_before: Timestamp


class ActivationUnscheduled(EventPayload, frozen=True):
    scheduled_for: Timestamp


class SkippedGuard(Payload, frozen=True):
    guard: str
    reason: str


class ActivationSkipped(EventPayload, frozen=True):
    scheduled_for: Timestamp
    failed: list[SkippedGuard]


class ApprovalChecked(EventPayload, frozen=True):
    outcome: ApprovalOutcome
    reasons: Reasons
    approval: WarpAnswer | None


class Approved(EventPayload, frozen=True):
    outcome: Literal["approved"]
    approval: Granted


class Blocked(EventPayload, frozen=True):
    reason: str
    reasons: Reasons
    from_state: Literal["generated", "replay_validated", "approved"]
    approval: WarpAnswer | None


class Activated(EventPayload, frozen=True):
    approval_id: str | None
    change_hash: Hash | None = None
    """The hash of the content that went live; absent from activations stored before."""


class RolledBack(EventPayload, frozen=True):
    reason: str
    restored_baseline: dict[str, Any]


ExpiryReason = Literal["ttl", "revalidate_required"]


class Expired(EventPayload, frozen=True):
    reason: ExpiryReason


class RevalidationRequired(EventPayload, frozen=True):
    reason: str


class TargetOpened(EventPayload, frozen=True):
    tenant_id: str
    target: TargetRef


class ProposalAttached(EventPayload, frozen=True):
    proposal_id: RecordId


class ProposalDetached(EventPayload, frozen=True):
    proposal_id: RecordId


class ProposalWentLive(EventPayload, frozen=True):
    proposal_id: RecordId
    change: dict[str, Any]
    baseline: dict[str, Any]
    change_hash: Hash | None = None
    """The hash of `change`; absent from events stored before."""


class BaselineRestored(EventPayload, frozen=True):
    proposal_id: RecordId
    baseline: dict[str, Any]


class RevalidationDemanded(EventPayload, frozen=True):
    replay_id: RecordId


LedgerKind = Literal["replay_budget", "promotion_velocity"]


class LedgerOpened(EventPayload, frozen=True):
    kind: LedgerKind
    scope: dict[str, str]


class Spent(EventPayload, frozen=True):
    at: Timestamp
    ref: str
    window_seconds: float


class PolicyOpened(EventPayload, frozen=True):
    tenant_id: str


class FreezeDeclared(EventPayload, frozen=True):
    freeze_id: RecordId
    targets: str
    starts_at: Timestamp
    ends_at: Timestamp
    reason: str


class FreezeFiled(EventPayload, frozen=True):
    tenant_id: str


class FreezeLifted(EventPayload, frozen=True):
    freeze_id: RecordId
    reason: str


class ActivationsStopped(EventPayload, frozen=True):
    reason: str


class ActivationsResumed(EventPayload, frozen=True):
    reason: str


EVENT_PAYLOADS: dict[str, type[EventPayload]] = {kind.__name__: kind for kind in EventPayload.__subclasses__()}


def payload_problem(event_type: str, payload: dict[str, Any]) -> str | None:
    """Why `payload` is not a valid payload of `event_type`, or None."""
    try:
        msgspec.convert(payload, EVENT_PAYLOADS[event_type])
    except (msgspec.ValidationError, KeyError) as error:
        return str(error)
    return None
