"""A typed Python client of the dobby API, sync (`Client`) and async (`AsyncClient`), on httpx.

Bodies and answers are the server's own Structs (`dobby.engine.*`); a plain dict body works too. Each write's
`position` is carried into the next read as `min_position`, so a read always sees this client's writes. Only
idempotent requests are retried — reads, and the writes whose same body finds the same record (intake, replay
evaluation, propose: SPEC §3) — on no answer or a 503. Refusals raise DobbyApiError subclasses with the SPEC code.

    with Client("http://127.0.0.1:18096", token="…") as dobby:
        replay = dobby.evaluate_replay({...})
        proposal = dobby.propose({...})
        dobby.approve_check(proposal.proposal_id)
        dobby.activate(proposal.proposal_id)
        print(dobby.target("acme", "prompt_template", "greeting").live)
"""

from __future__ import annotations

from dobby.client.async_client import AsyncClient
from dobby.client.calls import Page
from dobby.client.errors import (
    ConflictError,
    DobbyApiError,
    DobbyClientError,
    DobbyUnreachableError,
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    UnprocessableError,
)
from dobby.client.sync_client import Client

__all__ = [
    "AsyncClient",
    "Client",
    "ConflictError",
    "DobbyApiError",
    "DobbyClientError",
    "DobbyUnreachableError",
    "ForbiddenError",
    "MalformedRequestError",
    "NotFoundError",
    "Page",
    "UnauthorizedError",
    "UnavailableError",
    "UnprocessableError",
]
