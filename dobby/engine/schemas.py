"""JSON Schemas (draft 2020-12) of every command body: the one source of truth for input shape.

`schemas/*.json` are exported from here (`dobby schemas export`); a test keeps them in step.
"""

from __future__ import annotations

from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MAX_CHANGE_BYTES = 64 * 1024


def _string(max_length: int = 200, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _object(properties: dict[str, Any], required: list[str], title: str | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }
    if title:
        schema = {"title": title, **schema}
    return schema


FAMILY_VERSIONS = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 100,
    "propertyNames": _string(),
    "additionalProperties": _string(),
}
TARGET = _object({"type": _string(), "id": _string()}, ["type", "id"])
FREE_OBJECT = {"type": "object", "maxProperties": 1000}
METRIC_VALUES = {
    "type": "object",
    "maxProperties": 200,
    "propertyNames": _string(),
    "additionalProperties": {"type": "number"},
}

INTAKE = _object(
    {
        "tenant_id": _string(),
        "trace_id": _string(),
        "correlation_id": _string(),
        "outcome": _enum("success", "neutral_success", "partial", "failure"),
        "guardrail_decision": _enum("ALLOW", "WARN", "BLOCK"),
        "family_versions": FAMILY_VERSIONS,
        "steps": {
            "type": "array",
            "maxItems": 1000,
            "items": _object(
                {
                    "name": _string(),
                    "tenant_id": _string(),
                    "classification": _string(),
                    "attributes": FREE_OBJECT,
                },
                ["name"],
            ),
        },
        "source_events": {
            "type": "array",
            "maxItems": 1000,
            "items": _object({"event_id": _string(), "tenant_id": _string(), "kind": _string()}, ["event_id"]),
        },
        "target_hints": {"type": "array", "maxItems": 100, "items": TARGET},
        "security_critical": {"type": "boolean"},
    },
    ["tenant_id", "trace_id", "correlation_id", "outcome", "guardrail_decision", "family_versions"],
    title="Signal intake",
)

METRIC_RULE = _object(
    {
        "direction": _enum("increase", "decrease"),
        "min_improvement": {"type": "number", "minimum": 0},
        "max_regression": {"type": "number", "minimum": 0},
        "relative": {"type": "boolean"},
    },
    ["direction"],
)

REPLAY = _object(
    {
        "tenant_id": _string(),
        "target": TARGET,
        "family_versions": FAMILY_VERSIONS,
        "metrics": _object({"baseline": METRIC_VALUES, "candidate": METRIC_VALUES}, ["baseline", "candidate"]),
        "threshold_contract": _object(
            {
                "mode": _enum("all", "majority", "non_regression"),
                "metrics": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 200,
                    "propertyNames": _string(),
                    "additionalProperties": METRIC_RULE,
                },
                "veto": {"type": "array", "maxItems": 200, "items": _string()},
            },
            ["mode", "metrics"],
        ),
        "workload_similar": {"type": "boolean"},
        "run_ids": {"type": "array", "maxItems": 100, "items": _string(64)},
    },
    ["tenant_id", "target", "family_versions", "metrics", "threshold_contract", "workload_similar"],
    title="Replay evaluation",
)

PROPOSE = _object(
    {
        "tenant_id": _string(),
        "replay_id": _string(64),
        "target": TARGET,
        "risk": _enum("low", "medium", "high", "critical"),
        "change": FREE_OBJECT,
        "baseline": FREE_OBJECT,
        "rationale": _string(2000, 0),
        "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 31_536_000},
    },
    ["tenant_id", "replay_id", "target", "risk", "change", "baseline"],
    title="Promotion proposal",
)

PROPOSAL_REF = _object({"proposal_id": _string(64)}, ["proposal_id"], title="Proposal reference")

ROLLBACK = _object(
    {"proposal_id": _string(64), "reason": _string(2000)},
    ["proposal_id", "reason"],
    title="Rollback",
)

COMMAND_SCHEMAS: dict[str, dict[str, Any]] = {
    "intake": INTAKE,
    "replay-evaluate": REPLAY,
    "propose": PROPOSE,
    "approve-check": PROPOSAL_REF,
    "activate": PROPOSAL_REF,
    "rollback": ROLLBACK,
}


def document(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema as a standalone draft 2020-12 document."""
    return {"$schema": DRAFT, "$id": f"https://dobby.local/schemas/{name}.json", **schema}
