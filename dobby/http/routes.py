"""Every route once: path, method, role, body and answer types. The app and /openapi.json are both built from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

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
from dobby.engine.kernel.shapes import CONTROL_FREE, Identifier, Moment, Reason
from dobby.engine.model.policy import FreezeView
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.intake import IntakeSignal
from dobby.engine.rules.judgement import Verdict
from dobby.http.ofrep import OFREP, BulkEvaluation, EvaluationRequest, FlagEvaluation

READ = "auditor|operator"  # SPEC §8: reads, history, explain and proofs
LEARNING = "/api/v1/learning"
AUDIT = "/api/v1/audit"


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: str
    """The name of the endpoint on LearningRoutes or SurfaceRoutes."""
    role: str | None = None
    """None: open to anyone (SPEC §8)."""
    body: Any = None
    answer: Any = None
    created: bool = False
    params: tuple[Param, ...] = ()
    list_item: Any = None
    schema: str | None = None
    """The name of its body's file in `schemas/` (`dobby schemas export`)."""
    accepted: Any = None
    """The answer of a 202 (an activation scheduled for later, SPEC §12)."""
    protocol: str = "dobby"
    """"ofrep": OpenFeature's protocol, with its own error shapes (SPEC §15)."""

    @property
    def route_path(self) -> str:
        """The path as Starlette routes it: a target id may hold slashes (SPEC §4.4), so it takes the rest."""
        return self.path.replace("/{type}/{id}", "/{type}/{id:path}").replace("/{key}", "/{key:path}")

    @property
    def answers(self) -> tuple[Any, ...]:
        """The answer's types: one, or several alternatives."""
        if self.answer is None:
            return ()
        return self.answer if isinstance(self.answer, tuple) else (self.answer,)


INTEGER = {"type": "integer", "minimum": 0, "maximum": 2**62}
IDENTIFIER = msgspec.json.schema(Identifier)
"""An identifier or filter in a query or path (SPEC §4 input hygiene): not empty, no control characters."""
MIN_POSITION = Param("min_position", INTEGER)
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 500})
CURSOR = Param("cursor", {"type": "string", "pattern": "^[0-9]{1,18}$"})
MOMENT = msgspec.json.schema(Moment)
"""A timestamp in a query (SPEC §4): RFC 3339 with an explicit offset, in 1970–9999 UTC (dobby.engine.kernel.clock)."""
CREATED = (Param("since", MOMENT), Param("until", MOMENT))
PAGE = (LIMIT, CURSOR, Param("tenant_id", IDENTIFIER), MIN_POSITION, *CREATED)
TENANT_PAGE = (LIMIT, CURSOR, Param("tenant_id", IDENTIFIER, required=True), MIN_POSITION, *CREATED)
"""Lists of one tenant, held in memory by the engine (freezes, the decision queue); an offset is the cursor."""
RUN_FILTERS = (
    Param("outcome", IDENTIFIER),
    Param("trace_id", IDENTIFIER),
    Param("live_hash", {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}),
)
REPLAY_FILTERS = (
    Param("verdict", {"enum": list(get_args(Verdict))}),
    Param("target_type", IDENTIFIER),
    Param("target_id", IDENTIFIER),
)
PROPOSAL_FILTERS = (
    Param("state", IDENTIFIER),
    Param("target_type", IDENTIFIER),
    Param("target_id", IDENTIFIER),
    Param("revalidate_required", {"enum": ["true", "false"]}),
)


def _path(name: str) -> Param:
    return Param(name, {"type": "string", "minLength": 1, "pattern": CONTROL_FREE}, "path", True)


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
    Operation("GET", f"{LEARNING}/runs/{{run_id}}", "get_run", READ, None, RunView, params=(_path("run_id"),)),
    Operation("GET", f"{LEARNING}/replays", "list_replays", READ, params=PAGE + REPLAY_FILTERS, list_item=ReplayView),
    Operation(
        "GET",
        f"{LEARNING}/replays/{{replay_id}}",
        "get_replay",
        READ,
        None,
        ReplayView,
        params=(_path("replay_id"),),
    ),
    Operation(
        "POST",
        f"{LEARNING}/replays/{{replay_id}}/what-if",
        "what_if",
        "submitter|operator|auditor",
        WhatIf,
        WhatIfAnswer,
        schema="what-if",
        params=(_path("replay_id"),),
    ),
    Operation(
        "GET",
        f"{LEARNING}/targets/{{type}}/{{id}}",
        "get_target",
        "any",
        None,
        TargetRead,
        params=(_path("type"), _path("id"), Param("tenant_id", IDENTIFIER, required=True)),
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
        params=(_path("proposal_id"),),
    ),
    Operation(
        "GET",
        f"{LEARNING}/proposals/{{proposal_id}}/history",
        "history",
        READ,
        None,
        History,
        params=(
            _path("proposal_id"),
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
        params=(_path("proposal_id"),),
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
        params=(_path("freeze_id"), Param("reason", msgspec.json.schema(Reason), required=True)),
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
        params=(_path("proposal_id"), MIN_POSITION),
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
