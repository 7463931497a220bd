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

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import msgspec

from dobby.client import calls
from dobby.client.calls import Call, Page
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
    refusal,
)
from dobby.engine.audit.history import History
from dobby.engine.commands.activation import RollbackAnswer
from dobby.engine.commands.audit import Explanation
from dobby.engine.commands.decisions import Decision
from dobby.engine.commands.intake import IntakeAccepted, SampledOut
from dobby.engine.commands.loading import ProposalAnswer
from dobby.engine.commands.promotion import CheckAnswer, Propose
from dobby.engine.commands.replay import EvaluateReplay, ReplayAnswer
from dobby.engine.commands.schedule import ScheduledAnswer
from dobby.engine.commands.watch import ObserveAnswer
from dobby.engine.model.proposal import ProposalView
from dobby.engine.model.replay import ReplayView
from dobby.engine.model.run import RunView
from dobby.engine.model.target import TargetRead
from dobby.engine.rules.intake import IntakeSignal

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

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
MAX_PAUSE_SECONDS = 5.0
Body = Mapping[str, Any]


class _Session:
    """What both clients share: headers, the last write position, and the rules for answers and retries."""

    def __init__(self, token: str | None, actor: str | None, retries: int) -> None:
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        if token is not None:
            self.headers["authorization"] = f"Bearer {token}"
        if actor is not None:
            self.headers["x-actor"] = actor
        self.retries = retries
        self.position = 0
        """The log position of this client's last write: every read waits for the projections to reach it."""

    def arguments(self, call: Call[Any]) -> dict[str, Any]:
        params = dict(call.params)
        if call.read and self.position:
            params["min_position"] = str(self.position)
        content = None if call.body is None else msgspec.json.encode(call.body)
        return {"method": call.method, "url": call.path, "params": params, "content": content}

    def outcome(self, call: Call[T], response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise refusal(response)
        value = call.decode(response)
        position = getattr(value, "position", None)
        if not call.read and isinstance(position, int):
            self.position = max(self.position, position)
        return value

    def pause(self, call: Call[Any], attempt: int, failure: Exception | httpx.Response) -> float | None:
        """Seconds to wait before sending `call` again, or None to give up."""
        if not call.idempotent or attempt >= self.retries:
            return None
        backoff: float = min(0.2 * 2**attempt, MAX_PAUSE_SECONDS)
        if isinstance(failure, httpx.Response):
            if failure.status_code != 503:
                return None
            retry_after = refusal(failure).retry_after
            return backoff if retry_after is None else min(retry_after, MAX_PAUSE_SECONDS)
        return backoff


class Client:
    """The blocking client. `http` may be an httpx.Client of your own (its base_url is then used)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:18096",
        *,
        token: str | None = None,
        actor: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        http: httpx.Client | None = None,
    ) -> None:
        self.session = _Session(token, actor, retries)
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    @property
    def position(self) -> int:
        return self.session.position

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self.http.request(**self.session.arguments(call), headers=self.session.headers)
            except httpx.TransportError as error:
                pause = self.session.pause(call, attempt, error)
                if pause is None:
                    raise DobbyUnreachableError(f"no answer from dobby: {error!r}") from error
            else:
                pause = self.session.pause(call, attempt, response)
                if pause is None:
                    return self.session.outcome(call, response)
            time.sleep(pause)
            attempt += 1

    def intake(self, body: IntakeSignal | Body) -> IntakeAccepted | SampledOut:
        return self.run(calls.intake(body))

    def evaluate_replay(self, body: EvaluateReplay | Body) -> ReplayAnswer:
        return self.run(calls.evaluate_replay(body))

    def propose(self, body: Propose | Body) -> ProposalAnswer:
        return self.run(calls.propose(body))

    def approve_check(self, proposal_id: str) -> CheckAnswer:
        return self.run(calls.approve_check(proposal_id))

    def activate(self, proposal_id: str, not_before: str | None = None) -> ProposalAnswer | ScheduledAnswer:
        return self.run(calls.activate(proposal_id, not_before))

    def unschedule(self, proposal_id: str) -> ProposalAnswer:
        return self.run(calls.unschedule(proposal_id))

    def rollback(self, proposal_id: str, reason: str) -> RollbackAnswer:
        return self.run(calls.rollback(proposal_id, reason))

    def observe(self, proposal_id: str, metrics: Body) -> ObserveAnswer:
        return self.run(calls.observe(proposal_id, metrics))

    def get_run(self, run_id: str) -> RunView:
        return self.run(calls.get_run(run_id))

    def get_replay(self, replay_id: str) -> ReplayView:
        return self.run(calls.get_replay(replay_id))

    def get_proposal(self, proposal_id: str) -> ProposalView:
        return self.run(calls.get_proposal(proposal_id))

    def list_runs(self, **filters: Any) -> Page[RunView]:
        return self.run(calls.list_runs(**filters))

    def list_replays(self, **filters: Any) -> Page[ReplayView]:
        return self.run(calls.list_replays(**filters))

    def list_proposals(self, **filters: Any) -> Page[ProposalView]:
        return self.run(calls.list_proposals(**filters))

    def decisions(self, tenant_id: str, **filters: Any) -> Page[Decision]:
        return self.run(calls.decisions(tenant_id, **filters))

    def history(self, proposal_id: str, *, as_of_version: int | None = None, as_of: str | None = None) -> History:
        return self.run(calls.history(proposal_id, as_of_version=as_of_version, as_of=as_of))

    def explain(self, proposal_id: str) -> Explanation:
        return self.run(calls.explain(proposal_id))

    def target(self, tenant_id: str, target_type: str, target_id: str) -> TargetRead:
        return self.run(calls.target(tenant_id, target_type, target_id))


class AsyncClient:
    """The asyncio client: the same calls as Client, awaited. `http` may be an httpx.AsyncClient of your own
    (e.g. over httpx.ASGITransport for an app in the same process)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:18096",
        *,
        token: str | None = None,
        actor: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.session = _Session(token, actor, retries)
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)

    @property
    def position(self) -> int:
        return self.session.position

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self.http.request(**self.session.arguments(call), headers=self.session.headers)
            except httpx.TransportError as error:
                pause = self.session.pause(call, attempt, error)
                if pause is None:
                    raise DobbyUnreachableError(f"no answer from dobby: {error!r}") from error
            else:
                pause = self.session.pause(call, attempt, response)
                if pause is None:
                    return self.session.outcome(call, response)
            await asyncio.sleep(pause)
            attempt += 1

    async def intake(self, body: IntakeSignal | Body) -> IntakeAccepted | SampledOut:
        return await self.run(calls.intake(body))

    async def evaluate_replay(self, body: EvaluateReplay | Body) -> ReplayAnswer:
        return await self.run(calls.evaluate_replay(body))

    async def propose(self, body: Propose | Body) -> ProposalAnswer:
        return await self.run(calls.propose(body))

    async def approve_check(self, proposal_id: str) -> CheckAnswer:
        return await self.run(calls.approve_check(proposal_id))

    async def activate(self, proposal_id: str, not_before: str | None = None) -> ProposalAnswer | ScheduledAnswer:
        return await self.run(calls.activate(proposal_id, not_before))

    async def unschedule(self, proposal_id: str) -> ProposalAnswer:
        return await self.run(calls.unschedule(proposal_id))

    async def rollback(self, proposal_id: str, reason: str) -> RollbackAnswer:
        return await self.run(calls.rollback(proposal_id, reason))

    async def observe(self, proposal_id: str, metrics: Body) -> ObserveAnswer:
        return await self.run(calls.observe(proposal_id, metrics))

    async def get_run(self, run_id: str) -> RunView:
        return await self.run(calls.get_run(run_id))

    async def get_replay(self, replay_id: str) -> ReplayView:
        return await self.run(calls.get_replay(replay_id))

    async def get_proposal(self, proposal_id: str) -> ProposalView:
        return await self.run(calls.get_proposal(proposal_id))

    async def list_runs(self, **filters: Any) -> Page[RunView]:
        return await self.run(calls.list_runs(**filters))

    async def list_replays(self, **filters: Any) -> Page[ReplayView]:
        return await self.run(calls.list_replays(**filters))

    async def list_proposals(self, **filters: Any) -> Page[ProposalView]:
        return await self.run(calls.list_proposals(**filters))

    async def decisions(self, tenant_id: str, **filters: Any) -> Page[Decision]:
        return await self.run(calls.decisions(tenant_id, **filters))

    async def history(self, proposal_id: str, *, as_of_version: int | None = None, as_of: str | None = None) -> History:
        return await self.run(calls.history(proposal_id, as_of_version=as_of_version, as_of=as_of))

    async def explain(self, proposal_id: str) -> Explanation:
        return await self.run(calls.explain(proposal_id))

    async def target(self, tenant_id: str, target_type: str, target_id: str) -> TargetRead:
        return await self.run(calls.target(tenant_id, target_type, target_id))
