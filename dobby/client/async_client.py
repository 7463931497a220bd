"""The asyncio client of the dobby API (`dobby.client.AsyncClient`): the blocking client's calls, awaited."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from dobby.client import calls
from dobby.client.calls import Call, Page
from dobby.client.errors import DobbyUnreachableError
from dobby.client.session import DEFAULT_TIMEOUT, Body, Session
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

T = TypeVar("T")


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
        self.session = Session(token, actor, retries)
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
