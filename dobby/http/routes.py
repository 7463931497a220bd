"""Every route once: path, method, role, body and answer types. The app and /openapi.json are both built from it."""

from __future__ import annotations

from typing import Any

import msgspec

from dobby.engine.audit.checkpoint import Checkpoint, ConsistencyProof, InclusionProof, PublicKey
from dobby.engine.audit.history import History
from dobby.engine.audit.receipts import ReceiptsAnswer
from dobby.engine.commands.activation import Rollback, RollbackAnswer
from dobby.engine.commands.audit import Explanation
from dobby.engine.commands.decisions import Decision
from dobby.engine.commands.intake import IntakeAccepted, SampledOut
from dobby.engine.commands.loading import ProposalAnswer
from dobby.engine.commands.policy import DeclareFreeze, FreezeAnswer, StopAnswer, TenantAction
from dobby.engine.commands.promotion import CheckAnswer, ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay, ReplayAnswer
from dobby.engine.commands.schedule import Activate, ScheduledAnswer
from dobby.engine.commands.watch import Observe, ObserveAnswer
from dobby.engine.commands.what_if import WhatIf, WhatIfAnswer
from dobby.engine.kernel.shapes import Reason
from dobby.engine.model.policy import FreezeView
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.intake import IntakeSignal
from dobby.http.ofrep import OFREP, BulkEvaluation, EvaluationRequest, FlagEvaluation
from dobby.http.operation import Operation, Param
from dobby.http.parameters import (
    IDENTIFIER,
    INTEGER,
    MIN_POSITION,
    MOMENT,
    PAGE,
    PROPOSAL_FILTERS,
    REPLAY_FILTERS,
    RUN_FILTERS,
    TENANT_PAGE,
    path_param,
)

READ = "auditor|operator"  # SPEC §8: reads, history, explain and proofs
LEARNING = "/api/v1/learning"
AUDIT = "/api/v1/audit"


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/health", "health"),
    Operation("GET", "/ready", "ready", params=(Param("strict", {"enum": ["true", "false"]}),)),
    Operation("GET", "/version", "version"),
    Operation("GET", "/fabric-manifest.json", "fabric_manifest"),
    Operation("GET", "/metrics", "metrics"),
    Operation("GET", "/openapi.json", "openapi"),
    Operation("GET", "/api/v1/contract", "contract", role="any"),
    Operation(
        "POST",
        f"{LEARNING}/signals/intake",
        "intake",
        "submitter",
        IntakeSignal,
        (IntakeAccepted, SampledOut),
        created=True,
        schema="intake",
        params=(Param("X-Tenant-ID", IDENTIFIER, "header"),),
    ),
    Operation(
        "POST",
        f"{LEARNING}/replay/evaluate",
        "evaluate_replay",
        "submitter",
        EvaluateReplay,
        ReplayAnswer,
        True,
        schema="replay-evaluate",
    ),
    Operation(
        "POST", f"{LEARNING}/promotions/propose", "propose", "proposer", Propose, ProposalAnswer, True, schema="propose"
    ),
    Operation(
        "POST",
        f"{LEARNING}/promotions/approve-check",
        "approve_check",
        "operator",
        ProposalRef,
        CheckAnswer,
        schema="approve-check",
    ),
    Operation(
        "POST",
        f"{LEARNING}/promotions/activate",
        "activate",
        "operator",
        Activate,
        ProposalAnswer,
        schema="activate",
        accepted=ScheduledAnswer,
    ),
    Operation(
        "POST",
        f"{LEARNING}/promotions/unschedule",
        "unschedule",
        "operator",
        ProposalRef,
        ProposalAnswer,
        schema="unschedule",
    ),
    Operation(
        "POST", f"{LEARNING}/promotions/rollback", "rollback", "operator", Rollback, RollbackAnswer, schema="rollback"
    ),
    Operation("GET", f"{LEARNING}/runs", "list_runs", READ, params=PAGE + RUN_FILTERS, list_item=RunView),
    Operation("GET", f"{LEARNING}/runs/{{run_id}}", "get_run", READ, None, RunView, params=(path_param("run_id"),)),
    Operation("GET", f"{LEARNING}/replays", "list_replays", READ, params=PAGE + REPLAY_FILTERS, list_item=ReplayView),
    Operation(
        "GET",
        f"{LEARNING}/replays/{{replay_id}}",
        "get_replay",
        READ,
        None,
        ReplayView,
        params=(path_param("replay_id"),),
    ),
    Operation(
        "POST",
        f"{LEARNING}/replays/{{replay_id}}/what-if",
        "what_if",
        "submitter|operator|auditor",
        WhatIf,
        WhatIfAnswer,
        schema="what-if",
        params=(path_param("replay_id"),),
    ),
    Operation(
        "GET",
        f"{LEARNING}/targets/{{type}}/{{id}}",
        "get_target",
        "any",
        None,
        TargetRead,
        params=(path_param("type"), path_param("id"), Param("tenant_id", IDENTIFIER, required=True)),
    ),
    Operation(
        "GET",
        f"{LEARNING}/proposals",
        "list_proposals",
        READ,
        params=PAGE + PROPOSAL_FILTERS,
        list_item=ProposalView,
    ),
    Operation(
        "GET",
        f"{LEARNING}/proposals/{{proposal_id}}",
        "get_proposal",
        READ,
        None,
        ProposalView,
        params=(path_param("proposal_id"),),
    ),
    Operation(
        "GET",
        f"{LEARNING}/proposals/{{proposal_id}}/history",
        "history",
        READ,
        None,
        History,
        params=(
            path_param("proposal_id"),
            Param("as_of_version", {"type": "integer", "minimum": 1, "maximum": 10**9}),
            Param("as_of", MOMENT),
        ),
    ),
    Operation(
        "GET",
        f"{LEARNING}/proposals/{{proposal_id}}/explain",
        "explain",
        READ,
        None,
        Explanation,
        params=(path_param("proposal_id"),),
    ),
    Operation(
        "POST", f"{LEARNING}/promotions/observe", "observe", "submitter", Observe, ObserveAnswer, schema="observe"
    ),
    Operation(
        "POST", f"{LEARNING}/freezes", "declare_freeze", "operator", DeclareFreeze, FreezeAnswer, True, schema="freezes"
    ),
    Operation(
        "GET",
        f"{LEARNING}/freezes",
        "list_freezes",
        READ,
        params=(*TENANT_PAGE, Param("include", {"enum": ["past"]})),
        list_item=FreezeView,
    ),
    Operation(
        "DELETE",
        f"{LEARNING}/freezes/{{freeze_id}}",
        "lift_freeze",
        "operator",
        None,
        FreezeAnswer,
        params=(path_param("freeze_id"), Param("reason", msgspec.json.schema(Reason), required=True)),
    ),
    Operation(
        "GET",
        f"{LEARNING}/decisions",
        "decisions",
        READ,
        params=TENANT_PAGE,
        list_item=Decision,
    ),
    Operation("POST", f"{LEARNING}/stop", "stop", "operator", TenantAction, StopAnswer, schema="stop"),
    Operation("POST", f"{LEARNING}/resume", "resume", "operator", TenantAction, StopAnswer, schema="resume"),
    Operation(
        "POST",
        f"{OFREP}/evaluate/flags/{{key}}",
        "ofrep_evaluate",
        "any",
        EvaluationRequest,
        FlagEvaluation,
        params=(Param("key", {"type": "string", "minLength": 1}, "path", True), MIN_POSITION),
        protocol="ofrep",
        schema="ofrep-evaluation",
    ),
    Operation(
        "POST",
        f"{OFREP}/evaluate/flags",
        "ofrep_bulk",
        "any",
        EvaluationRequest,
        BulkEvaluation,
        params=(Param("If-None-Match", {"type": "string"}, "header"), MIN_POSITION),
        protocol="ofrep",
    ),
    Operation("GET", f"{AUDIT}/checkpoint", "checkpoint", None, None, Checkpoint, params=(MIN_POSITION,)),
    Operation("GET", f"{AUDIT}/key", "key", None, None, PublicKey, params=(MIN_POSITION,)),
    Operation(
        "GET",
        f"{AUDIT}/proofs/inclusion",
        "inclusion_proof",
        READ,
        None,
        InclusionProof,
        params=(
            Param("position", {**INTEGER, "minimum": 1}, required=True),
            Param("tree_size", {**INTEGER, "minimum": 1}),
        ),
    ),
    Operation(
        "GET",
        f"{AUDIT}/receipts/{{proposal_id}}",
        "receipts",
        READ,
        None,
        ReceiptsAnswer,
        params=(path_param("proposal_id"), MIN_POSITION),
    ),
    Operation(
        "GET",
        f"{AUDIT}/proofs/consistency",
        "consistency_proof",
        READ,
        None,
        ConsistencyProof,
        params=(Param("first", {**INTEGER, "minimum": 1}, required=True), Param("second", {**INTEGER, "minimum": 1})),
    ),
)


def command_bodies() -> dict[str, Any]:
    """The body of every command by its name in `schemas/`: the route table is their one list."""
    return {o.schema: o.body for o in OPERATIONS if o.schema is not None}
