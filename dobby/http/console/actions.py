"""The console's operator actions (SPEC §9): approve-check, activate, rollback and what-if, through the same engine
commands as the API; each answers with the page it was posted from, showing the outcome."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import decode
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.commands.what_if import WhatIf
from dobby.engine.kernel.errors import DobbyError, NotFoundError
from dobby.engine.kernel.shapes import UNSET
from dobby.engine.rules.judgement import ThresholdContract
from dobby.http.auth import Principal, principal_for
from dobby.http.console.read_pages import ReadPages, require_visible
from dobby.http.console.web import Message, RefusedError, csrf_refusal, form_of, refusal_of
from dobby.http.errors import status_of
from dobby.http.learning import call
from dobby.http.ports import AppServices


@dataclass
class ActionPages:
    services: AppServices
    pages: ReadPages

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
        try:
            message = await self._command(action, proposal_id, form.get("reason", "").strip(), principal)
            status = 200
        except NotFoundError:
            raise  # unknown, or another tenant's: the same 404 page (SPEC §8)
        except DobbyError as error:
            message, status = refusal_of(error), status_of(error)
        return await self.pages.proposal_page(request, principal, proposal_id, message, status)

    async def _command(self, action: str, proposal_id: str, reason: str, principal: Principal) -> Message:
        engine, actor, tenants = self.services.engine, principal.name, principal.tenants
        ref = ProposalRef(proposal_id)
        if action == "approve-check":
            checked = await call(engine.promotions.approve_check, ref, actor=actor, tenants=tenants)
            reasons = tuple(checked.reasons)
            return Message(True, f"Approve-check: outcome {checked.approval_outcome}; state {checked.state}.", reasons)
        if action == "activate":
            active = await call(engine.activations.activate, ref, actor=actor, tenants=tenants)
            return Message(True, f"Activated: the proposal is {active.state}.")
        if not reason:
            return Message(False, "Refused: a reason is required to roll back. Nothing was changed.")
        body = decode(msgspec.json.encode({"proposal_id": proposal_id, "reason": reason}), Rollback)
        rolled = await call(engine.activations.rollback, body, actor=actor, tenants=tenants)
        return Message(True, f"Rolled back: the proposal is {rolled.state}; the baseline is live again.")

    async def what_if(self, request: Request) -> Response:
        principal = principal_for(request, ("submitter", "operator", "auditor"))
        replay_id = request.path_params["replay_id"]
        form = await form_of(request)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}.")
        stored = await call(self.services.engine.audit.get_replay, replay_id)
        require_visible(principal, stored.tenant_id, "replay", replay_id)
        text, similar = form.get("threshold_contract", ""), form.get("workload_similar", "stored")
        try:
            contract = decode(text.encode("utf-8"), ThresholdContract)
            workload = UNSET if similar not in ("true", "false") else similar == "true"
            answer = await call(
                self.services.engine.replays.what_if, replay_id, WhatIf(contract, workload), tenants=principal.tenants
            )
        except DobbyError as error:
            return await self.pages.replay_page(
                request,
                principal,
                replay_id,
                message=refusal_of(error),
                contract_text=text,
                similar=similar,
                code=422,
            )
        return await self.pages.replay_page(
            request, principal, replay_id, outcome=msgspec.to_builtins(answer), contract_text=text, similar=similar
        )
