"""The promotion-policy routes of SPEC §12: freezes (declare, list, lift), the emergency stop (stop, resume) and
observations of active proposals (observe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.commands.decisions import CANDIDATE_STATES
from dobby.engine.commands.policy import DeclareFreeze, PolicyCommands, TenantAction
from dobby.engine.commands.watch import Observe
from dobby.engine.kernel.clock import parse_moment, rfc3339
from dobby.engine.kernel.errors import InvalidInputError, Violation
from dobby.engine.kernel.shapes import is_identifier
from dobby.http.auth import READERS, principal_for
from dobby.http.learning import LearningRoutes, call, invalid, json_response, natural
from dobby.http.ports import AppServices
from dobby.projections.queries import DEFAULT_LIMIT, MAX_LIMIT


@dataclass
class PolicyRoutes:
    services: AppServices

    @property
    def policy(self) -> PolicyCommands:
        return self.services.engine.policy

    async def declare_freeze(self, request: Request) -> Response:
        principal, body = await LearningRoutes(self.services).command(request, "operator", DeclareFreeze)
        answer, created = await call(self.policy.declare_freeze, body, actor=principal.name, tenants=principal.tenants)
        return json_response(answer, 201 if created else 200)

    async def list_freezes(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        tenant_id = _tenant(request)
        principal.require_tenant(tenant_id)
        include = request.query_params.get("include")
        if include not in (None, "past"):
            raise invalid("include", "include may only be past")
        await LearningRoutes(self.services).wait_for_min_position(request)
        found = await call(self.policy.freezes, tenant_id, include_past=include == "past")
        return json_response(_page(request, _in_range(request, found, "declared_at")))

    async def lift_freeze(self, request: Request) -> Response:
        principal = principal_for(request, "operator")
        reason = request.query_params.get("reason", "")
        freeze_id = request.path_params["freeze_id"]
        answer = await call(self.policy.lift_freeze, freeze_id, reason, tenants=principal.tenants, actor=principal.name)
        return json_response(answer)

    async def observe(self, request: Request) -> Response:
        principal, body = await LearningRoutes(self.services).command(request, "submitter", Observe)
        observe = self.services.engine.watch.observe
        return json_response(await call(observe, body, actor=principal.name, tenants=principal.tenants))

    async def decisions(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        tenant_id = _tenant(request)
        principal.require_tenant(tenant_id)
        await LearningRoutes(self.services).wait_for_min_position(request)
        views = await call(self.services.queries.proposal_views, tenant_id, CANDIDATE_STATES)
        found = await call(self.services.engine.decisions.decisions, views)
        return json_response(_page(request, _in_range(request, found, "since")))

    async def stop(self, request: Request) -> Response:
        principal, body = await LearningRoutes(self.services).command(request, "operator", TenantAction)
        return json_response(await call(self.policy.stop, body, actor=principal.name, tenants=principal.tenants))

    async def resume(self, request: Request) -> Response:
        principal, body = await LearningRoutes(self.services).command(request, "operator", TenantAction)
        return json_response(await call(self.policy.resume, body, actor=principal.name, tenants=principal.tenants))


def _tenant(request: Request) -> str:
    tenant_id = request.query_params.get("tenant_id")
    if tenant_id is None or not is_identifier(tenant_id):
        message = "tenant_id is required"
        raise InvalidInputError(message, [Violation("required", message, "tenant_id")])
    return tenant_id


def _in_range(request: Request, found: list[Any], field: str) -> list[Any]:
    """The items whose `field` (when they were made, or last changed) is at or after `since` and before `until`."""
    since, until = (request.query_params.get(name) for name in ("since", "until"))
    low = rfc3339(parse_moment(since, "since")) if since is not None else None
    high = rfc3339(parse_moment(until, "until")) if until is not None else None
    return [
        item
        for item in found
        if (low is None or getattr(item, field) >= low) and (high is None or getattr(item, field) < high)
    ]


def _page(request: Request, found: list[Any]) -> dict[str, Any]:
    """One page of a list held in memory: `limit` (1..500, 50 as every list) items from the offset `cursor`."""
    limit = natural(request, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    start = natural(request, "cursor") or 0
    following = start + limit
    return {"items": found[start:following], "next_cursor": str(following) if following < len(found) else None}
