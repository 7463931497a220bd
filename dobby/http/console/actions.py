"""The console's operator actions (SPEC §9): approve-check, activate, rollback and what-if, through the same engine
commands as the API; each answers with the page it was posted from, showing the outcome."""

from __future__ import annotations

from dataclasses import dataclass, replace

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from dobby.engine.commands.activation import Rollback
from dobby.engine.commands.boundary import decode
from dobby.engine.commands.promotion import ProposalRef
from dobby.engine.commands.what_if import WhatIf
from dobby.engine.kernel.errors import DobbyError, NotFoundError
from dobby.engine.kernel.shapes import UNSET
from dobby.engine.rules import lifecycle
from dobby.http.auth import Principal, principal_for
from dobby.http.console import contract_form
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
        if action not in lifecycle.OPERATOR_ACTIONS:
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
        """Re-judge a stored replay under the contract of the form's fields, or of its JSON when that was edited."""
        principal = principal_for(request, ("submitter", "operator", "auditor"))
        replay_id = request.path_params["replay_id"]
        form = await form_of(request, contract_form.MAX_FIELDS)
        refusal = csrf_refusal(request, form)
        if refusal is not None:
            raise RefusedError(403, f"Refused: {refusal}.")
        audit = self.services.engine.audit
        stored = await call(audit.get_replay, replay_id)
        require_visible(principal, stored.tenant_id, "replay", replay_id)
        inputs = await call(audit.get_replay_inputs, replay_id)
        posted = contract_form.posted_form(form, contract_form.stored_form(inputs.threshold_contract, inputs.metrics))
        similar = form.get("workload_similar", "stored")
        try:
            contract = contract_form.judged_contract(posted)
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
                form=posted,
                similar=similar,
                code=status_of(error),  # 422 for the contract, 503 when the mode refuses what-if, as the API answers
            )
        shown = posted if posted.from_json else replace(posted, text=contract_form.contract_text(contract))
        return await self.pages.replay_page(
            request, principal, replay_id, outcome=msgspec.to_builtins(answer), form=shown, similar=similar
        )
