"""The console's promotion-policy pages (SPEC §12): freezes and the emergency stop, with the operator's actions
(freeze, lift, stop, resume) through the same engine commands as the API, and the decision queue of the overview."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dobby.engine.commands.boundary import convert
from dobby.engine.commands.decisions import CANDIDATE_STATES
from dobby.engine.commands.policy import DeclareFreeze, TenantAction
from dobby.engine.kernel.errors import DobbyError, NotFoundError
from dobby.engine.kernel.shapes import is_identifier
from dobby.http.auth import READERS, Principal, principal_for
from dobby.http.console.web import CONSOLE, Endpoint, Message, RefusedError, Renderer, csrf_refusal, form_of, refusal_of
from dobby.http.errors import status_of
from dobby.http.learning import call
from dobby.http.ports import AppServices

ACTIONS = ("freeze", "lift", "stop", "resume")
QUEUE_SIZE = 50


_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _utc(value: str) -> str:
    """A browser's datetime-local value (no offset) read as UTC, as the form says; anything else as typed."""
    value = value.strip()
    if not (local := _LOCAL_TIME.match(value)):
        return value
    return value + ("Z" if local.group(1) else ":00Z")  # browsers leave out zero seconds; RFC 3339 needs them


@dataclass
class PolicyPages:
    services: AppServices
    renderer: Renderer
    guarded: Callable[[Endpoint], Endpoint]

    def routes(self) -> list[Route]:
        guarded = self.guarded
        return [
            Route(f"{CONSOLE}/freezes", guarded(self.freezes), methods=["GET"]),
            Route(f"{CONSOLE}/freezes/{{action}}", guarded(self.act), methods=["POST"]),
        ]

    async def decisions(self, principal: Principal, tenants: list[str]) -> list[dict[str, Any]]:
        """The decision queue of every tenant the caller may see, newest first (the overview leads with it)."""
        services = self.services
        found: list[dict[str, Any]] = []
        for tenant in tenants:
            if principal.may_see(tenant):
                views = await call(services.queries.proposal_views, tenant, CANDIDATE_STATES)
                found += msgspec.to_builtins(await call(services.engine.decisions.decisions, views))
        return sorted(found, key=lambda item: item["since"], reverse=True)[:QUEUE_SIZE]

    async def freezes(self, request: Request) -> Response:
        principal = principal_for(request, READERS)
        return await self._page(request, principal)

    async def _page(
        self, request: Request, principal: Principal, message: Message | None = None, code: int = 200, also: str = ""
    ) -> Response:
        """Every tenant the caller may see with a replay or a proposal, its token's own, and the one asked or acted
        for (a freeze can come before the tenant's first proposal)."""
        services = self.services
        known = set(await call(services.queries.tenants)) | set(principal.tenants or ())
        for extra in (request.query_params.get("tenant_id", "").strip(), also):
            if extra and is_identifier(extra):
                known.add(extra)
        tenants = sorted(t for t in known if principal.may_see(t))
        policy = services.engine.policy
        rows = []
        for tenant in tenants:
            state = await call(policy.policy_state, tenant)
            freezes = await call(policy.freezes, tenant, include_past=False)
            rows.append({"tenant_id": tenant, "stop": state.stop if state else None, "freezes": freezes})
        return self.renderer.page(
            request, "freezes.html", code, principal, tenants=rows, message=message, live_url=f"{CONSOLE}/freezes"
        )

    async def act(self, request: Request) -> Response:
        """Freeze, lift, stop or resume as the operator posting the form; the page shows the outcome."""

        principal = principal_for(request, "operator")
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise NotFoundError(f"no action {action[:40]!r}")
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}. Nothing was changed.")
        try:
            text = await self._command(action, form, principal)
            message, status = Message(True, text), 200
        except DobbyError as error:
            message, status = refusal_of(error), status_of(error)
        return await self._page(request, principal, message, status, also=form.get("tenant_id", "").strip())

    async def _command(self, action: str, form: dict[str, str], principal: Principal) -> str:
        policy = self.services.engine.policy
        actor = principal.name
        reason = form.get("reason", "").strip()
        if action == "lift":
            lifted = await call(
                policy.lift_freeze, form.get("freeze_id", ""), reason, tenants=principal.tenants, actor=actor
            )
            return f"Lifted freeze {lifted.freeze_id}."
        tenant, tenants = form.get("tenant_id", "").strip(), principal.tenants
        if action == "freeze":
            body: dict[str, Any] = {"tenant_id": tenant, "ends_at": _utc(form.get("ends_at", "")), "reason": reason}
            if form.get("targets", "").strip():
                body["targets"] = form["targets"].strip()
            if form.get("starts_at", "").strip():
                body["starts_at"] = _utc(form["starts_at"])
            declared, _ = await call(policy.declare_freeze, convert(body, DeclareFreeze), actor=actor, tenants=tenants)
            return f"Declared freeze {declared.freeze_id} over {declared.targets} until {declared.ends_at}."
        command = policy.stop if action == "stop" else policy.resume
        action_body = convert({"tenant_id": tenant, "reason": reason}, TenantAction)
        answered = await call(command, action_body, actor=actor, tenants=tenants)
        return f"Activations of {tenant} are {'stopped' if answered.stopped else 'running'}."
