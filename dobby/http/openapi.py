"""GET /openapi.json: every route with the request schemas of dobby.engine.schemas and its answers."""

from __future__ import annotations

from functools import cache
from typing import Any

from dobby import __version__
from dobby.engine.schemas import COMMAND_SCHEMAS

STR = {"type": "string"}
NULLABLE_STR = {"type": ["string", "null"]}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
OBJ = {"type": "object"}
TARGET = {"type": "object", "required": ["type", "id"], "properties": {"type": STR, "id": STR}}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


ERROR = _obj(
    ["error"],
    error=_obj(["code", "message", "details"], code=STR, message=STR, details={"type": "array", "items": OBJ}),
)
RUN = _obj(
    [
        "run_id",
        "tenant_id",
        "trace_id",
        "correlation_id",
        "outcome",
        "guardrail_decision",
        "family_versions",
        "target_hints",
        "run_hash",
        "provenance_hash",
        "sampled",
        "learning_signal",
        "evidence_digest",
        "recorded_at",
    ],
    run_id=STR,
    tenant_id=STR,
    trace_id=STR,
    correlation_id=STR,
    outcome=STR,
    guardrail_decision=STR,
    family_versions=OBJ,
    target_hints={"type": "array", "items": TARGET},
    run_hash=STR,
    provenance_hash=STR,
    sampled=BOOL,
    learning_signal=BOOL,
    evidence_digest=NULLABLE_STR,
    recorded_at=STR,
)
METRIC_RESULT = _obj(
    ["name", "baseline", "candidate", "improvement", "passed", "regressed", "veto", "margin"],
    name=STR,
    baseline={"type": "number"},
    candidate={"type": "number"},
    improvement={"type": "number"},
    passed=BOOL,
    regressed=BOOL,
    veto=BOOL,
    margin={"type": "number"},
)
REPLAY = _obj(
    [
        "replay_id",
        "tenant_id",
        "target",
        "family_versions",
        "verdict",
        "reasons",
        "metric_results",
        "candidate_hash",
        "provenance_hash",
        "run_ids",
        "evaluated_at",
    ],
    replay_id=STR,
    tenant_id=STR,
    target=TARGET,
    family_versions=OBJ,
    verdict={"enum": ["passed", "rejected", "revalidate_required"]},
    reasons={"type": "array", "items": STR},
    metric_results={"type": "array", "items": METRIC_RESULT},
    candidate_hash=STR,
    provenance_hash=STR,
    run_ids={"type": "array", "items": STR},
    evaluated_at=STR,
)
STATES = ["generated", "replay_validated", "approved", "blocked", "active", "rolled_back", "expired"]
PROPOSAL = _obj(
    [
        "proposal_id",
        "tenant_id",
        "target",
        "risk",
        "state",
        "replay_id",
        "candidate_hash",
        "provenance_hash",
        "family_versions",
        "change",
        "baseline",
        "rationale",
        "approval_requirement",
        "approval",
        "revalidate_required",
        "created_at",
        "updated_at",
        "expires_at",
        "activated_at",
        "version",
    ],
    proposal_id=STR,
    tenant_id=STR,
    target=TARGET,
    risk=STR,
    state={"enum": STATES},
    replay_id=STR,
    candidate_hash=STR,
    provenance_hash=STR,
    family_versions=OBJ,
    change=OBJ,
    baseline=OBJ,
    rationale=NULLABLE_STR,
    approval_requirement={"enum": ["human", "any"]},
    approval={"type": ["object", "null"]},
    revalidate_required=BOOL,
    created_at=STR,
    updated_at=STR,
    expires_at=STR,
    activated_at=NULLABLE_STR,
    version=INT,
)
INTAKE_ANSWER = _obj(
    ["accepted", "run_hash"],
    accepted=BOOL,
    run_id=STR,
    run_hash=STR,
    provenance_hash=STR,
    sampled=BOOL,
    duplicate=BOOL,
    position=INT,
    reason=STR,
)
REPLAY_ANSWER = _obj(
    ["replay_id", "verdict", "reasons", "metric_results", "candidate_hash", "provenance_hash", "budget", "position"],
    replay_id=STR,
    verdict=STR,
    reasons={"type": "array"},
    metric_results={"type": "array"},
    candidate_hash=STR,
    provenance_hash=STR,
    position=INT,
    budget=_obj(
        ["remaining", "window_seconds", "resets_at"], remaining=INT, window_seconds={"type": "number"}, resets_at=STR
    ),
)
CHECK_ANSWER = _obj(
    ["proposal_id", "state", "approval_outcome", "reasons", "position"],
    proposal_id=STR,
    state={"enum": STATES},
    approval_outcome=NULLABLE_STR,
    reasons={"type": "array"},
    position=INT,
)
HISTORY = _obj(
    ["proposal_id", "events", "chain_valid"],
    proposal_id=STR,
    chain_valid=BOOL,
    events={
        "type": "array",
        "items": _obj(
            [
                "version",
                "type",
                "occurred_at",
                "actor",
                "payload",
                "state_before",
                "state_after",
                "prev_hash",
                "event_hash",
            ],
            version=INT,
            type=STR,
            occurred_at=STR,
            actor=STR,
            payload=OBJ,
            state_before=NULLABLE_STR,
            state_after=STR,
            prev_hash=STR,
            event_hash=STR,
        ),
    },
    as_of={"type": ["object", "null"]},
)
EXPLAIN = _obj(
    ["proposal_id", "state", "can_activate", "guards"],
    proposal_id=STR,
    state=STR,
    can_activate=BOOL,
    guards={"type": "array", "items": _obj(["name", "passed", "reason"], name=STR, passed=BOOL, reason=STR)},
)


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return _obj(["items", "next_cursor"], items={"type": "array", "items": item}, next_cursor=NULLABLE_STR)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json({"$ref": "#/components/schemas/Error"}, "refused") for status in statuses}


MIN_POSITION = {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
LIST_PARAMS = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    {"name": "cursor", "in": "query", "required": False, "schema": STR},
    {"name": "tenant_id", "in": "query", "required": False, "schema": STR},
    MIN_POSITION,
]


def _write(name: str, answer: dict[str, Any], created: bool, conflicts: bool = True) -> dict[str, Any]:
    responses = {"200": _json(answer, "done (or found: duplicate)")}
    if created:
        responses["201"] = _json(answer, "created")
    responses.update(_errors(400, 413, 415, 422, 503, *((404, 409) if conflicts else ())))
    return {
        "post": {
            "operationId": name.replace("-", "_"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
            },
            "responses": responses,
        }
    }


def _read(operation: str, answer: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    responses = {"200": _json(answer, "found")}
    responses.update(_errors(404, 422, 503))
    return {"get": {"operationId": operation, "parameters": parameters, "responses": responses}}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


@cache
def openapi_document() -> dict[str, Any]:
    learning = "/api/v1/learning"
    plain = {"type": "object"}
    paths: dict[str, Any] = {
        "/health": _read("health", _obj(["status", "service"], status=STR, service=STR), []),
        "/ready": _read(
            "ready",
            _obj(
                [
                    "status",
                    "requested_mode",
                    "effective_mode",
                    "fabric",
                    "persistence",
                    "projections",
                    "queue_depth",
                    "backpressure",
                    "detail",
                ]
            ),
            [{"name": "strict", "in": "query", "required": False, "schema": {"enum": ["true", "false"]}}],
        ),
        "/version": _read("version", _obj(["version", "requested_mode", "effective_mode"]), []),
        "/fabric-manifest.json": _read("fabric_manifest", plain, []),
        "/api/v1/contract": _read("contract", plain, []),
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": STR}}}
                },
            }
        },
        "/openapi.json": _read("openapi", plain, []),
        f"{learning}/signals/intake": _write("intake", INTAKE_ANSWER, created=True, conflicts=False),
        f"{learning}/replay/evaluate": _write("replay-evaluate", REPLAY_ANSWER, created=True),
        f"{learning}/promotions/propose": _write("propose", PROPOSAL, created=True),
        f"{learning}/promotions/approve-check": _write("approve-check", CHECK_ANSWER, created=False),
        f"{learning}/promotions/activate": _write("activate", PROPOSAL, created=False),
        f"{learning}/promotions/rollback": _write("rollback", PROPOSAL, created=False),
        f"{learning}/runs": _read("list_runs", _page(RUN), LIST_PARAMS),
        f"{learning}/runs/{{run_id}}": _read("get_run", RUN, [_path_param("run_id"), MIN_POSITION]),
        f"{learning}/replays": _read("list_replays", _page(REPLAY), LIST_PARAMS),
        f"{learning}/replays/{{replay_id}}": _read("get_replay", REPLAY, [_path_param("replay_id"), MIN_POSITION]),
        f"{learning}/proposals": _read("list_proposals", _page(PROPOSAL), LIST_PARAMS),
        f"{learning}/proposals/{{proposal_id}}": _read(
            "get_proposal", PROPOSAL, [_path_param("proposal_id"), MIN_POSITION]
        ),
        f"{learning}/proposals/{{proposal_id}}/history": _read(
            "get_history",
            HISTORY,
            [
                _path_param("proposal_id"),
                MIN_POSITION,
                {
                    "name": "as_of_version",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1},
                },
                {
                    "name": "as_of",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "format": "date-time"},
                },
            ],
        ),
        f"{learning}/proposals/{{proposal_id}}/explain": _read(
            "explain", EXPLAIN, [_path_param("proposal_id"), MIN_POSITION]
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dobby",
            "version": __version__,
            "description": "Governed adaptive-learning engine (service jhf-dobby).",
        },
        "paths": paths,
        "components": {"schemas": {"Error": ERROR, **COMMAND_SCHEMAS}},
    }
