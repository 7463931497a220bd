"""Each API call once, as data: method, path, body, and the Struct its answer decodes into (the server's own).

The sync and the async client both run these; only how they wait differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from dobby.engine.audit.history import History
from dobby.engine.commands.activation import Rollback, RollbackAnswer
from dobby.engine.commands.audit import Explanation
from dobby.engine.commands.decisions import Decision
from dobby.engine.commands.intake import IntakeAccepted, SampledOut
from dobby.engine.commands.loading import ProposalAnswer
from dobby.engine.commands.promotion import CheckAnswer, ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay, ReplayAnswer
from dobby.engine.commands.schedule import Activate, ScheduledAnswer
from dobby.engine.commands.watch import Observe, ObserveAnswer
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.intake import IntakeSignal

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
LEARNING = "/api/v1/learning"


class Page(msgspec.Struct, Generic[I], frozen=True):
    """One page of a list, newest first; pass `next_cursor` as `cursor` for the next (SPEC §4.8)."""

    items: list[I]
    next_cursor: str | None


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    body: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    """Safe to send again: a read, or a write whose same body finds the same record (SPEC §3: 200 duplicate)."""
    read: bool = False
    """Carries the client's last write position as min_position (read-your-writes)."""


def _as(kind: type[T]) -> Callable[[httpx.Response], T]:
    decoder = msgspec.json.Decoder(kind)
    return lambda response: decoder.decode(response.content)


class _Accepted(msgspec.Struct):
    accepted: bool


def _intake_answer(response: httpx.Response) -> IntakeAccepted | SampledOut:
    accepted = msgspec.json.decode(response.content, type=_Accepted).accepted
    kind: type[IntakeAccepted | SampledOut] = IntakeAccepted if accepted else SampledOut
    return msgspec.json.decode(response.content, type=kind)


def _activation_answer(response: httpx.Response) -> ProposalAnswer | ScheduledAnswer:
    kind: type[ProposalAnswer | ScheduledAnswer] = ScheduledAnswer if response.status_code == 202 else ProposalAnswer
    return msgspec.json.decode(response.content, type=kind)


def _filters(values: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in values.items()
        if value is not None
    }


def _id(value: str) -> str:
    return quote(value, safe="")


def intake(body: IntakeSignal | Mapping[str, Any]) -> Call[IntakeAccepted | SampledOut]:
    return Call("POST", f"{LEARNING}/signals/intake", _intake_answer, body, idempotent=True)


def evaluate_replay(body: EvaluateReplay | Mapping[str, Any]) -> Call[ReplayAnswer]:
    return Call("POST", f"{LEARNING}/replay/evaluate", _as(ReplayAnswer), body, idempotent=True)


def propose(body: Propose | Mapping[str, Any]) -> Call[ProposalAnswer]:
    return Call("POST", f"{LEARNING}/promotions/propose", _as(ProposalAnswer), body, idempotent=True)


def approve_check(proposal_id: str) -> Call[CheckAnswer]:
    return Call("POST", f"{LEARNING}/promotions/approve-check", _as(CheckAnswer), ProposalRef(proposal_id))


def activate(proposal_id: str, not_before: str | None = None) -> Call[ProposalAnswer | ScheduledAnswer]:
    body = Activate(proposal_id) if not_before is None else Activate(proposal_id, not_before)
    return Call("POST", f"{LEARNING}/promotions/activate", _activation_answer, body)


def unschedule(proposal_id: str) -> Call[ProposalAnswer]:
    return Call("POST", f"{LEARNING}/promotions/unschedule", _as(ProposalAnswer), ProposalRef(proposal_id))


def rollback(proposal_id: str, reason: str) -> Call[RollbackAnswer]:
    return Call("POST", f"{LEARNING}/promotions/rollback", _as(RollbackAnswer), Rollback(proposal_id, reason))


def observe(proposal_id: str, metrics: Mapping[str, Any]) -> Call[ObserveAnswer]:
    body = Observe(proposal_id, dict(metrics))
    return Call("POST", f"{LEARNING}/promotions/observe", _as(ObserveAnswer), body)


def get_run(run_id: str) -> Call[RunView]:
    return Call("GET", f"{LEARNING}/runs/{_id(run_id)}", _as(RunView), idempotent=True, read=True)


def get_replay(replay_id: str) -> Call[ReplayView]:
    return Call("GET", f"{LEARNING}/replays/{_id(replay_id)}", _as(ReplayView), idempotent=True, read=True)


def get_proposal(proposal_id: str) -> Call[ProposalView]:
    return Call("GET", f"{LEARNING}/proposals/{_id(proposal_id)}", _as(ProposalView), idempotent=True, read=True)


def _list(path: str, item: type[I], filters: Mapping[str, Any]) -> Call[Page[I]]:
    return Call("GET", f"{LEARNING}/{path}", _as(Page[item]), params=_filters(filters), idempotent=True, read=True)  # type: ignore[valid-type]


def list_runs(**filters: Any) -> Call[Page[RunView]]:
    return _list("runs", RunView, filters)


def list_replays(**filters: Any) -> Call[Page[ReplayView]]:
    return _list("replays", ReplayView, filters)


def list_proposals(**filters: Any) -> Call[Page[ProposalView]]:
    return _list("proposals", ProposalView, filters)


def decisions(tenant_id: str, **filters: Any) -> Call[Page[Decision]]:
    return _list("decisions", Decision, {"tenant_id": tenant_id, **filters})


def history(proposal_id: str, *, as_of_version: int | None = None, as_of: str | None = None) -> Call[History]:
    params = _filters({"as_of_version": as_of_version, "as_of": as_of})
    path = f"{LEARNING}/proposals/{_id(proposal_id)}/history"
    return Call("GET", path, _as(History), params=params, idempotent=True, read=True)


def explain(proposal_id: str) -> Call[Explanation]:
    path = f"{LEARNING}/proposals/{_id(proposal_id)}/explain"
    return Call("GET", path, _as(Explanation), idempotent=True, read=True)


def target(tenant_id: str, target_type: str, target_id: str) -> Call[TargetRead]:
    path = f"{LEARNING}/targets/{_id(target_type)}/{quote(target_id, safe='/')}"
    return Call("GET", path, _as(TargetRead), params={"tenant_id": tenant_id}, idempotent=True, read=True)
