"""The verifiable-audit routes of SPEC §11: the latest checkpoint, the signing key, inclusion and consistency proofs."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from dobby.http.auth import READERS, principal_for
from dobby.http.learning import LearningRoutes, call, invalid, json_response, natural
from dobby.http.ports import AppServices


@dataclass
class AuditRoutes:
    services: AppServices

    async def checkpoint(self, request: Request) -> Response:
        await LearningRoutes(self.services).wait_for_min_position(request)  # SPEC §4: every read takes it
        return json_response(await call(self.services.digest.current))

    async def key(self, request: Request) -> Response:
        await LearningRoutes(self.services).wait_for_min_position(request)
        return json_response(await call(self.services.digest.public_key))

    async def inclusion_proof(self, request: Request) -> Response:
        _auditor(request)
        await LearningRoutes(self.services).wait_for_min_position(request)
        position = _required(request, "position")
        return json_response(await call(self.services.digest.inclusion, position, natural(request, "tree_size")))

    async def receipts(self, request: Request) -> Response:
        """SPEC §11: every promotion receipt of one proposal, as DSSE envelopes."""
        principal = principal_for(request, READERS)
        learning = LearningRoutes(self.services)
        await learning.wait_for_min_position(request)
        proposal_id = request.path_params["proposal_id"]
        await learning.require_proposal_tenant(principal, proposal_id)
        return json_response({"items": await call(self.services.receipts.envelopes, proposal_id)})

    async def consistency_proof(self, request: Request) -> Response:
        _auditor(request)
        await LearningRoutes(self.services).wait_for_min_position(request)
        first = _required(request, "first")
        return json_response(await call(self.services.digest.consistency, first, natural(request, "second")))


def _auditor(request: Request) -> None:
    """Proofs are for auditors and operators (SPEC §8); they cover the whole log, every tenant's event hashes."""
    principal_for(request, READERS)


def _required(request: Request, name: str) -> int:
    value = natural(request, name)
    if value is None:
        raise invalid(name, f"{name} is required")
    return value
