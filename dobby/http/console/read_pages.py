"""The console's read pages (SPEC §9): the overview, the proposal and run lists, one proposal, one replay."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.kernel.errors import not_found
from dobby.engine.kernel.shapes import Outcome, is_identifier
from dobby.engine.rules import lifecycle
from dobby.http.auth import READERS, Principal, principal_for
from dobby.http.console.contract_form import DIRECTIONS, MODES, RENDERED, ContractForm, stored_form
from dobby.http.console.policy_pages import PolicyPages
from dobby.http.console.web import CONSOLE, Message, RefusedError, Renderer
from dobby.http.learning import call
from dobby.http.ports import AppServices
from dobby.http.surface import SurfaceRoutes

PAGE_SIZE = 25
OUTCOMES: tuple[str, ...] = get_args(Outcome)


@dataclass
class ReadPages:
    services: AppServices
    surface: SurfaceRoutes
    renderer: Renderer
    policy: PolicyPages

    async def overview(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        readiness = await self.surface.readiness_view()
        queries = self.services.queries
        counts = await call(queries.proposal_counts, principal.tenants)
        tenants = [t for t in await call(queries.tenants) if principal.may_see(t)]
        gauges = await call(self.services.gauges)
        limits = self.services.engine.context.limits
        budgets = gauges.get("budget_remaining", {})
        breakers = gauges.get("breaker_open", {})
        per_tenant = [
            {"tenant_id": t, "budget": budgets.get(t, limits.replay_budget), "breaker_open": breakers.get(t, False)}
            for t in tenants
        ]
        checkpoint = await call(self.services.digest.latest)
        decisions = await self.policy.decisions(principal, tenants)
        return self.renderer.page(
            request,
            "overview.html",
            principal=principal,
            decisions=decisions,
            ready=readiness,
            counts=[(state, counts.get(state, 0)) for state in lifecycle.STATES],
            tenants=per_tenant,
            budget_limit=limits.replay_budget,
            checkpoint=checkpoint,
        )

    async def proposals(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        filters = _filters(request, ("tenant_id", "state", "target_type", "target_id", "cursor"))
        page = await call(self.services.queries.list_proposals, {**filters, "limit": str(PAGE_SIZE)}, principal.tenants)
        return self.renderer.page(
            request, "proposals.html", principal=principal, page=page, filters=filters, states=lifecycle.STATES
        )

    async def runs(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        filters = _filters(request, ("tenant_id", "outcome", "cursor"))
        page = await call(self.services.queries.list_runs, {**filters, "limit": str(PAGE_SIZE)}, principal.tenants)
        return self.renderer.page(
            request, "runs.html", principal=principal, page=page, filters=filters, outcomes=OUTCOMES
        )

    async def proposal(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        return await self.proposal_page(request, principal, request.path_params["proposal_id"])

    async def proposal_page(
        self,
        request: Request,
        principal: Principal,
        proposal_id: str,
        message: Message | None = None,
        code: int = 200,
    ) -> Response:
        audit = self.services.engine.audit
        view = msgspec.to_builtins(await call(audit.get_proposal, proposal_id))
        require_visible(principal, view["tenant_id"], "proposal", proposal_id)
        explanation = msgspec.to_builtins(await call(audit.get_explanation, proposal_id))
        history = msgspec.to_builtins(await call(audit.get_history, proposal_id))
        replay = msgspec.to_builtins(await call(audit.get_replay, view["replay_id"]))
        target = view["target"]
        live = await call(self.services.queries.get_target, view["tenant_id"], target["type"], target["id"])
        granted = [e["payload"]["approval"] for e in history["events"] if e["type"] == "Approved"]
        observations = [e for e in history["events"] if e["type"] == "Observed"][::-1]
        receipts = [_opened(envelope) for envelope in await call(self.services.receipts.envelopes, proposal_id)]
        return self.renderer.page(
            request,
            "proposal.html",
            code,
            principal,
            proposal=view,
            actions=lifecycle.actions_in(view["state"]),
            explanation=explanation,
            history=history,
            replay=replay,
            live=live,
            granted=granted[-1] if granted else None,
            observations=observations,
            receipts=receipts,
            message=message,
            live_url=f"{CONSOLE}/proposals/{view['proposal_id']}",
        )

    async def replay(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        return await self.replay_page(request, principal, request.path_params["replay_id"])

    async def replay_page(
        self,
        request: Request,
        principal: Principal,
        replay_id: str,
        *,
        outcome: dict[str, Any] | None = None,
        message: Message | None = None,
        form: ContractForm | None = None,
        similar: str = "stored",
        code: int = 200,
    ) -> Response:
        """The replay and its what-if form: as stored, or as last posted (`form`) beside the outcome."""
        audit = self.services.engine.audit
        view = msgspec.to_builtins(await call(audit.get_replay, replay_id))
        require_visible(principal, view["tenant_id"], "replay", replay_id)
        inputs = await call(audit.get_replay_inputs, replay_id)
        shown = form or stored_form(inputs.threshold_contract, inputs.metrics)
        return self.renderer.page(
            request,
            "replay.html",
            code,
            principal,
            replay=view,
            inputs=msgspec.to_builtins(inputs),
            contract=shown,
            modes=MODES,
            directions=DIRECTIONS,
            rendered_field=RENDERED,
            default_confidence=self.services.engine.context.limits.confidence,
            similar=similar,
            outcome=outcome,
            message=message,
            live_url=f"{CONSOLE}/replays/{view['replay_id']}",
        )


def require_visible(principal: Principal, tenant: str, kind: str, identifier: str) -> None:
    """Another tenant's record is answered exactly as an unknown one (SPEC §8): the page names neither its
    tenant nor that it exists."""
    if not principal.may_see(tenant):
        raise not_found(kind, identifier)


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The filters a list page was asked for: empty ones are left out, malformed ones are refused by the query."""
    found = {}
    for name in names:
        value = request.query_params.get(name, "").strip()
        if value:
            if not is_identifier(value):
                raise RefusedError(422, f"the filter {name} must be 1 to 200 characters without control characters")
            found[name] = value
    return found


def _opened(envelope: dict[str, Any]) -> dict[str, Any]:
    """A receipt as the page shows it: its Statement read out of the envelope, and the envelope to download."""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    signed_by = ", ".join(signature["keyid"] for signature in envelope["signatures"])
    return {"statement": statement, "envelope": json.dumps(envelope, separators=(",", ":")), "signed_by": signed_by}
