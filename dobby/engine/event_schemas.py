"""JSON Schemas (draft 2020-12) of every stored event payload, by event type.

`schemas/events/*.json` are exported from here; the state machine checks every event it stores against them.
"""

from __future__ import annotations

from typing import Any

from dobby.engine.schemas import FAMILY_VERSIONS, INTAKE, METRIC_VALUES, REPLAY, TARGET

HASH = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
TIME = {"type": "string", "format": "date-time"}
ID = {"type": "string", "minLength": 1, "maxLength": 64}
TEXT = {"type": "string"}
STRINGS = {"type": "array", "items": TEXT}
NULLABLE_TEXT = {"type": ["string", "null"]}
OBJECT = {"type": "object"}


def _payload(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
        "additionalProperties": False,
    }


METRIC_RESULT = _payload(
    {
        "name": TEXT,
        "baseline": {"type": "number"},
        "candidate": {"type": "number"},
        "improvement": {"type": "number"},
        "passed": {"type": "boolean"},
        "regressed": {"type": "boolean"},
        "veto": {"type": "boolean"},
        "margin": {"type": "number"},
    }
)
WARP_ANSWER = {
    "type": ["object", "null"],
    "properties": {
        "approval_id": TEXT,
        "decision": {"enum": ["approved", "rejected", "pending"]},
        "approver": _payload({"id": TEXT, "kind": {"enum": ["human", "service"]}}),
        "binding": _payload({"candidate_hash": TEXT, "provenance_hash": TEXT}),
        "decided_at": TIME,
        "expires_at": TIME,
    },
    "required": ["approval_id", "decision", "approver", "binding", "decided_at", "expires_at"],
    "additionalProperties": False,
}
GRANTED = _payload(
    {
        "id": TEXT,
        "approver": TEXT,
        "kind": {"enum": ["human", "service"]},
        "decided_at": TIME,
        "expires_at": TIME,
        "binding": _payload({"candidate_hash": TEXT, "provenance_hash": TEXT}),
    }
)
OUTCOMES = ["approved", "pending", "unavailable", "insufficient_approver", "rejected", "mismatched", "expired"]

EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "RunRecorded": _payload(
        {
            "body": INTAKE,
            "run_hash": HASH,
            "provenance_hash": HASH,
            "sampled": {"type": "boolean"},
            "learning_signal": {"type": "boolean"},
            "evidence_digest": {"type": ["string", "null"]},
            "recorded_at": TIME,
        }
    ),
    "ReplayEvaluated": _payload(
        {
            "tenant_id": TEXT,
            "target": TARGET,
            "family_versions": FAMILY_VERSIONS,
            "metrics": _payload({"baseline": METRIC_VALUES, "candidate": METRIC_VALUES}),
            "threshold_contract": REPLAY["properties"]["threshold_contract"],
            "workload_similar": {"type": "boolean"},
            "run_ids": STRINGS,
            "verdict": {"enum": ["passed", "rejected", "revalidate_required"]},
            "reasons": STRINGS,
            "metric_results": {"type": "array", "items": METRIC_RESULT},
            "candidate_hash": HASH,
            "provenance_hash": HASH,
            "request_hash": HASH,
            "evaluated_at": TIME,
        }
    ),
    "Generated": _payload(
        {
            "tenant_id": TEXT,
            "target": TARGET,
            "risk": {"enum": ["low", "medium", "high", "critical"]},
            "replay_id": ID,
            "candidate_hash": HASH,
            "provenance_hash": HASH,
            "family_versions": FAMILY_VERSIONS,
            "change": OBJECT,
            "baseline": OBJECT,
            "rationale": NULLABLE_TEXT,
            "approval_requirement": {"enum": ["human", "any"]},
            "revalidate_required": {"type": "boolean"},
            "expires_at": TIME,
            "request_hash": HASH,
        }
    ),
    "ReplayValidated": _payload({"checks": STRINGS}),
    "ApprovalChecked": _payload({"outcome": {"enum": OUTCOMES}, "reasons": STRINGS, "approval": WARP_ANSWER}),
    "Approved": _payload({"outcome": {"const": "approved"}, "approval": GRANTED}),
    "Blocked": _payload(
        {
            "reason": TEXT,
            "reasons": STRINGS,
            "from_state": {"enum": ["generated", "replay_validated", "approved"]},
            "approval": WARP_ANSWER,
        }
    ),
    "Activated": _payload({"approval_id": TEXT}),
    "RolledBack": _payload({"reason": TEXT, "restored_baseline": OBJECT}),
    "Expired": _payload({"reason": {"enum": ["ttl", "revalidate_required"]}}),
    "RevalidationRequired": _payload({"reason": TEXT}),
    "TargetOpened": _payload({"tenant_id": TEXT, "target": TARGET}),
    "ProposalAttached": _payload({"proposal_id": ID}),
    "ProposalDetached": _payload({"proposal_id": ID}),
    "ProposalWentLive": _payload({"proposal_id": ID, "change": OBJECT, "baseline": OBJECT}),
    "BaselineRestored": _payload({"proposal_id": ID, "baseline": OBJECT}),
    "RevalidationDemanded": _payload({"replay_id": ID}),
    "LedgerOpened": _payload({"kind": {"enum": ["replay_budget", "promotion_velocity"]}, "scope": OBJECT}),
    "Spent": _payload({"at": TIME, "ref": TEXT, "window_seconds": {"type": "number", "exclusiveMinimum": 0}}),
}
