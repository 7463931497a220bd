"""The console's routes (SPEC §9): read pages over the engine's views and projections, operator actions through the
same engine commands as the API, sign-in and sign-out. The caller is authenticated by the API's own backend."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import decode
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.commands.what_if import WhatIf
from dobby.engine.kernel.errors import DobbyError, NotFoundError, not_found
from dobby.engine.kernel.shapes import UNSET, Outcome, is_identifier
from dobby.engine.rules import lifecycle
from dobby.engine.rules.judgement import ThresholdContract
from dobby.http.auth import READERS, Principal, TokenBackend, principal_for
from dobby.http.console.policy_pages import PolicyPages
from dobby.http.console.web import (
    CONSOLE,
    Endpoint,
    Message,
    RefusedError,
    Renderer,
    csrf_refusal,
    form_of,
    redirect,
    refusal_of,
    secured,
    set_cookie,
)
from dobby.http.errors import HttpError, status_of
from dobby.http.learning import call
from dobby.http.ports import AppServices
from dobby.http.sessions import SESSION_COOKIE, SESSION_SECONDS, SessionCodec
from dobby.http.surface import SurfaceRoutes

PAGE_SIZE = 25
OUTCOMES: tuple[str, ...] = get_args(Outcome)


async def _to_console(_: Request) -> Response:
    """`GET /` leads a newcomer to the console (SPEC §7)."""
    return RedirectResponse(CONSOLE, status_code=307)


@dataclass
class ConsoleRoutes:
    services: AppServices
    surface: SurfaceRoutes
    backend: TokenBackend
    renderer: Renderer
    sessions: SessionCodec | None
    static: dict[str, tuple[bytes, str]]

    @property
    def enabled(self) -> bool:
        """With tokens the console needs DOBBY_CONSOLE_SECRET to sign sessions; without it, it stays shut."""
        return self.backend.tokens is None or self.sessions is not None

    def routes(self) -> list[Route]:
        pages: list[tuple[str, Endpoint, str]] = [
            (CONSOLE, self.overview, "GET"),
            (f"{CONSOLE}/proposals", self.proposals, "GET"),
            (f"{CONSOLE}/proposals/{{proposal_id}}", self.proposal, "GET"),
            (f"{CONSOLE}/proposals/{{proposal_id}}/{{action}}", self.act, "POST"),
            (f"{CONSOLE}/replays/{{replay_id}}", self.replay, "GET"),
            (f"{CONSOLE}/replays/{{replay_id}}/what-if", self.what_if, "POST"),
            (f"{CONSOLE}/runs", self.runs, "GET"),
            (f"{CONSOLE}/sign-in", self.sign_in_form, "GET"),
            (f"{CONSOLE}/sign-in", self.sign_in, "POST"),
            (f"{CONSOLE}/sign-out", self.sign_out, "POST"),
        ]
        found = [Route(path, self.guarded(endpoint), methods=[method]) for path, endpoint, method in pages]
        found += self.policy_pages().routes()
        found.append(Route(f"{CONSOLE}/static/{{name}}", self.asset, methods=["GET"]))
        found.append(Route("/", _to_console, methods=["GET"]))
        return found

    def policy_pages(self) -> PolicyPages:
        return PolicyPages(self.services, self.renderer, self.guarded)

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        """Every page's refusals as pages: sign-in when nobody is signed in, else the reason in plain words."""

        async def guarded(request: Request) -> Response:
            if not self.enabled:
                text = "The console needs DOBBY_CONSOLE_SECRET when API tokens are configured; it is not set."
                return self._error(request, 503, text)
            try:
                return await endpoint(request)
            except HttpError as error:
                if error.status == 401:
                    return redirect(f"{CONSOLE}/sign-in")
                return self._error(request, error.status, error.message)
            except RefusedError as refused:
                return self._error(request, refused.status, refused.text)
            except DobbyError as error:
                message = refusal_of(error)
                return self._error(request, status_of(error), message.text, message.details)

        return guarded

    def _error(self, request: Request, status: int, text: str, details: tuple[str, ...] = ()) -> Response:
        user = request.scope.get("user")
        principal = user if isinstance(user, Principal) else None
        values = {"code": status, "text": text, "details": details}
        return self.renderer.page(request, "error.html", status, principal, **values)

    # ----- read pages ---------------------------------------------------------------------------------

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
        decisions = await self.policy_pages().decisions(principal, tenants)
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
        return await self._proposal_page(request, principal, request.path_params["proposal_id"])

    async def _proposal_page(
        self,
        request: Request,
        principal: Principal,
        proposal_id: str,
        message: Message | None = None,
        code: int = 200,
    ) -> Response:
        audit = self.services.engine.audit
        view = msgspec.to_builtins(await call(audit.get_proposal, proposal_id))
        _require_visible(principal, view["tenant_id"], "proposal", proposal_id)
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
        return await self._replay_page(request, principal, request.path_params["replay_id"])

    async def _replay_page(
        self,
        request: Request,
        principal: Principal,
        replay_id: str,
        *,
        outcome: dict[str, Any] | None = None,
        message: Message | None = None,
        contract_text: str | None = None,
        similar: str = "stored",
        code: int = 200,
    ) -> Response:
        audit = self.services.engine.audit
        view = msgspec.to_builtins(await call(audit.get_replay, replay_id))
        _require_visible(principal, view["tenant_id"], "replay", replay_id)
        inputs = await call(audit.get_replay_inputs, replay_id)
        return self.renderer.page(
            request,
            "replay.html",
            code,
            principal,
            replay=view,
            inputs=msgspec.to_builtins(inputs),
            contract_text=contract_text or msgspec.json.format(msgspec.json.encode(inputs.threshold_contract)).decode(),
            similar=similar,
            outcome=outcome,
            message=message,
            live_url=f"{CONSOLE}/replays/{view['replay_id']}",
        )

    async def asset(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            return self._error(request, 404, "no such file")
        response = secured(Response(found[0], media_type=found[1]))
        response.headers["Cache-Control"] = "max-age=300"
        return response

    # ----- actions ------------------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """approve-check, activate or rollback, as the operator posting the form; the page shows the outcome."""
        principal = principal_for(request, "operator")
        proposal_id, action = request.path_params["proposal_id"], request.path_params["action"]
        if action not in ("approve-check", "activate", "rollback"):
            raise NotFoundError(f"no action {action[:40]!r}")
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}. Nothing was changed.")
        view = await call(self.services.engine.audit.get_proposal, proposal_id)
        _require_visible(principal, view.tenant_id, "proposal", proposal_id)
        try:
            message = await self._command(action, proposal_id, form.get("reason", "").strip(), principal.name)
            status = 200
        except DobbyError as error:
            message, status = refusal_of(error), status_of(error)
        return await self._proposal_page(request, principal, proposal_id, message, status)

    async def _command(self, action: str, proposal_id: str, reason: str, actor: str) -> Message:
        engine = self.services.engine
        if action == "approve-check":
            checked = await call(engine.promotions.approve_check, ProposalRef(proposal_id), actor=actor)
            reasons = tuple(checked.reasons)
            return Message(True, f"Approve-check: outcome {checked.approval_outcome}; state {checked.state}.", reasons)
        if action == "activate":
            active = await call(engine.activations.activate, ProposalRef(proposal_id), actor=actor)
            return Message(True, f"Activated: the proposal is {active.state}.")
        if not reason:
            return Message(False, "Refused: a reason is required to roll back. Nothing was changed.")
        body = decode(msgspec.json.encode({"proposal_id": proposal_id, "reason": reason}), Rollback)
        rolled = await call(engine.activations.rollback, body, actor=actor)
        return Message(True, f"Rolled back: the proposal is {rolled.state}; the baseline is live again.")

    async def what_if(self, request: Request) -> Response:
        principal = principal_for(request, ("submitter", "operator", "auditor"))
        replay_id = request.path_params["replay_id"]
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}.")
        stored = await call(self.services.engine.audit.get_replay, replay_id)
        _require_visible(principal, stored.tenant_id, "replay", replay_id)
        text, similar = form.get("threshold_contract", ""), form.get("workload_similar", "stored")
        try:
            contract = decode(text.encode("utf-8"), ThresholdContract)
            workload = UNSET if similar not in ("true", "false") else similar == "true"
            answer = await call(
                self.services.engine.replays.what_if, replay_id, WhatIf(contract, workload), tenants=principal.tenants
            )
        except DobbyError as error:
            return await self._replay_page(
                request,
                principal,
                replay_id,
                message=refusal_of(error),
                contract_text=text,
                similar=similar,
                code=422,
            )
        return await self._replay_page(
            request, principal, replay_id, outcome=msgspec.to_builtins(answer), contract_text=text, similar=similar
        )

    # ----- sessions -----------------------------------------------------------------------------------

    async def sign_in_form(self, request: Request) -> Response:
        if self.backend.tokens is None:
            return redirect(CONSOLE)
        return self.renderer.page(request, "sign_in.html", problem=None)

    async def sign_in(self, request: Request) -> Response:
        if self.backend.tokens is None or self.sessions is None:
            return redirect(CONSOLE)
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        found = None if refusal else self.backend.find(form.get("token", ""))
        if found is None:
            problem = refusal or "That token is not valid."
            return self.renderer.page(request, "sign_in.html", 401, problem=problem)
        if not found[1].roles & set(READERS):
            roles = ", ".join(sorted(found[1].roles))
            problem = (
                f"The token {found[1].name!r} ({roles}) cannot use the console: it needs the auditor or operator role."
            )
            return self.renderer.page(request, "sign_in.html", 403, problem=problem)
        response = redirect(CONSOLE)
        set_cookie(request, response, SESSION_COOKIE, self.sessions.issue(found[0]), max_age=SESSION_SECONDS)
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}.")
        response = redirect(f"{CONSOLE}/sign-in" if self.backend.tokens is not None else CONSOLE)
        response.delete_cookie(SESSION_COOKIE, path=CONSOLE, httponly=True, samesite="strict")
        return response


def _require_visible(principal: Principal, tenant: str, kind: str, identifier: str) -> None:
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
