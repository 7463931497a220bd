"""The /api/v1/learning routes: each decodes, calls one engine command or query, and encodes the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import decode
from dobby.engine.commands.promotion import ProposalRef, Propose
from dobby.engine.commands.replay import EvaluateReplay
from dobby.engine.commands.schedule import Activate, ScheduledAnswer
from dobby.engine.commands.what_if import WhatIf
from dobby.engine.kernel.clock import parse_moment
from dobby.engine.kernel.errors import InvalidInputError, Violation, not_found
from dobby.engine.kernel.shapes import is_ascii_digits, is_identifier
from dobby.engine.service import Engine
from dobby.http.auth import READERS, Principal, principal_for
from dobby.http.errors import HttpError
from dobby.http.ports import AppServices

WHAT_IF_ROLES = ("submitter", "operator", "auditor")
MIN_POSITION_WAIT_SECONDS = 2.0
CALL_DEADLINE_SECONDS = 2.8
MAX_POSITION = 2**62
T = TypeVar("T")
_ENCODER = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENCODER.encode(value), status_code=status, media_type="application/json", headers=headers)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking engine or query call in the thread pool, answering 503 if it outlives the deadline."""
    try:
        return await asyncio.wait_for(run_in_threadpool(function, *args, **kwargs), CALL_DEADLINE_SECONDS)
    except TimeoutError:
        raise HttpError(503, "persistence_unavailable", "the database did not answer in time") from None


async def read_body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise HttpError(415, "unsupported_media_type", "send the body as application/json")
    return await request.body()


def invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(message, [Violation("out_of_range", message, field)])


def natural(request: Request, name: str, low: int = 0, high: int = MAX_POSITION) -> int | None:
    """A query parameter that must be an integer in low..high, or absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not is_ascii_digits(raw) or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(name, f"{name} must be an integer in {low}..{high}")
    return int(raw)


@dataclass
class LearningRoutes:
    services: AppServices

    @property
    def engine(self) -> Engine:
        return self.services.engine

    async def command(self, request: Request, role: str, kind: type[T]) -> tuple[Principal, T]:
        """The caller, when its role may send this command, and the body decoded; the engine checks tenants."""
        principal = principal_for(request, role)
        return principal, decode(await read_body(request), kind)

    async def require_proposal_tenant(self, principal: Principal, proposal_id: str) -> None:
        """For reads outside the engine (receipts): the proposal, when the caller may see its tenant; else answered
        exactly as an unknown one (SPEC §8). Engine commands and queries take the caller's tenants themselves."""
        if principal.tenants is not None:
            view = await call(self.engine.audit.get_proposal, proposal_id)
            if not principal.may_see(view.tenant_id):
                raise not_found("proposal", proposal_id)

    async def wait_for_min_position(self, request: Request) -> None:
        wanted = natural(request, "min_position")
        if wanted is None:
            return
        if wanted > await call(self.engine.position):
            raise invalid("min_position", "min_position is beyond the last written position of the log")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MIN_POSITION_WAIT_SECONDS
        pause = 0.005
        while True:
            positions = await call(self.services.projection_positions)
            if positions and min(positions.values()) >= wanted:
                return
            if loop.time() >= deadline:
                raise HttpError(503, "projection_lagging", f"projections have not reached position {wanted} yet")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    # ----- writes ------------------------------------------------------------------------------------

    async def intake(self, request: Request) -> Response:
        principal = principal_for(request, "submitter")
        answer = await self.engine.intake.submit_async(
            await read_body(request),
            header_tenant=request.headers.get("x-tenant-id"),
            tenants=principal.tenants,
            actor=principal.name,
        )
        created = getattr(answer, "accepted", False) and not getattr(answer, "duplicate", True)
        return json_response(answer, 201 if created else 200)

    async def evaluate_replay(self, request: Request) -> Response:
        principal, body = await self.command(request, "submitter", EvaluateReplay)
        answer, created = await call(
            self.engine.replays.evaluate, body, actor=principal.name, tenants=principal.tenants
        )
        return json_response(answer, 201 if created else 200)

    async def what_if(self, request: Request) -> Response:
        principal = principal_for(request, WHAT_IF_ROLES)
        body = decode(await read_body(request), WhatIf)
        replay_id = request.path_params["replay_id"]
        return json_response(await call(self.engine.replays.what_if, replay_id, body, tenants=principal.tenants))

    async def propose(self, request: Request) -> Response:
        principal, body = await self.command(request, "proposer", Propose)
        answer, created = await call(
            self.engine.promotions.propose, body, actor=principal.name, tenants=principal.tenants
        )
        return json_response(answer, 201 if created else 200)

    async def approve_check(self, request: Request) -> Response:
        principal, body = await self.command(request, "operator", ProposalRef)
        answer = await call(self.engine.promotions.approve_check, body, actor=principal.name, tenants=principal.tenants)
        return json_response(answer)

    async def activate(self, request: Request) -> Response:
        principal, body = await self.command(request, "operator", Activate)
        answered = await call(self.engine.schedule.activate, body, actor=principal.name, tenants=principal.tenants)
        return json_response(answered, 202 if isinstance(answered, ScheduledAnswer) else 200)

    async def unschedule(self, request: Request) -> Response:
        principal, body = await self.command(request, "operator", ProposalRef)
        answer = await call(self.engine.schedule.unschedule, body, actor=principal.name, tenants=principal.tenants)
        return json_response(answer)

    async def rollback(self, request: Request) -> Response:
        principal, body = await self.command(request, "operator", Rollback)
        answer = await call(self.engine.activations.rollback, body, actor=principal.name, tenants=principal.tenants)
        return json_response(answer)

    # ----- reads -------------------------------------------------------------------------------------

    async def _get(self, request: Request, query: Callable[[str], dict[str, Any]], kind: str) -> Response:
        principal = principal_for(request, READERS)
        await self.wait_for_min_position(request)
        identifier = request.path_params[f"{kind}_id"]
        view = await call(query, identifier)
        if not principal.may_see(view["tenant_id"]):
            raise not_found(kind, identifier)  # another tenant's record answers as an unknown one (SPEC §8)
        return json_response(view)

    async def _list(self, request: Request, query: Callable[..., Any]) -> Response:
        principal = principal_for(request, READERS)
        await self.wait_for_min_position(request)
        return json_response(await call(query, dict(request.query_params), principal.tenants))

    async def get_run(self, request: Request) -> Response:
        return await self._get(request, self.services.queries.get_run, "run")

    async def get_replay(self, request: Request) -> Response:
        return await self._get(request, self.services.queries.get_replay, "replay")

    async def get_proposal(self, request: Request) -> Response:
        return await self._get(request, self.services.queries.get_proposal, "proposal")

    async def list_runs(self, request: Request) -> Response:
        return await self._list(request, self.services.queries.list_runs)

    async def list_replays(self, request: Request) -> Response:
        return await self._list(request, self.services.queries.list_replays)

    async def list_proposals(self, request: Request) -> Response:
        return await self._list(request, self.services.queries.list_proposals)

    async def get_target(self, request: Request) -> Response:
        principal = principal_for(request, "any")
        tenant = request.query_params.get("tenant_id")
        if tenant is None or not is_identifier(tenant):
            message = "tenant_id is required: 1 to 200 characters without control characters"
            raise InvalidInputError(message, [Violation("required", message, "tenant_id")])
        principal.require_tenant(tenant)
        await self.wait_for_min_position(request)
        kind, key = request.path_params["type"], request.path_params["id"]
        if not (is_identifier(kind) and is_identifier(key)):
            message = "a target's type and id are 1 to 200 characters without control characters"
            raise InvalidInputError(message, [Violation("invalid_value", message, "target")])
        return json_response(await call(self.services.queries.get_target, tenant, kind, key))

    async def history(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        await self.wait_for_min_position(request)
        proposal_id = request.path_params["proposal_id"]
        as_of_version = natural(request, "as_of_version", 1, 10**9)
        as_of = _moment(request.query_params.get("as_of"), "as_of")
        history = await call(
            self.engine.audit.get_history,
            proposal_id,
            as_of_version=as_of_version,
            as_of=as_of,
            tenants=principal.tenants,
        )
        return json_response(history)

    async def explain(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        await self.wait_for_min_position(request)
        proposal_id = request.path_params["proposal_id"]
        return json_response(await call(self.engine.audit.get_explanation, proposal_id, tenants=principal.tenants))


def _moment(raw: str | None, field: str) -> datetime | None:
    return None if raw is None else parse_moment(raw, field)
